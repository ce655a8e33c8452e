"""A day's partition under a storage root, as the jobs name it: the layout of spark_jobs.interface
(where the DAGs read it too), on the root as storage normalizes it.

<root>/incoming/<model>/ds=<date>/   records to score; complete once `_SUCCESS` is there
<root>/scores/<model>/ds=<date>/     their scores (spark_jobs.scoring.score)
"""

from __future__ import annotations

import argparse
import datetime as dt

from spark_jobs import interface, storage

MARKER = interface.MARKER


def input_uri(root: str, model: str, date: str) -> str:
    return interface.input_uri(storage.normalize(root), model, date)


def output_uri(root: str, model: str, date: str) -> str:
    return interface.output_uri(storage.normalize(root), model, date)


def iso_date(text: str) -> str:
    """An argparse type: a date as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
