"""Where a day's data lives under the storage root: one `ds=YYYY-MM-DD` folder per logical date.

<root>/incoming/<model>/ds=<date>/   records to score; complete once `_SUCCESS` is there
<root>/scores/<model>/ds=<date>/     their scores (spark_jobs.scoring.score)
"""

from __future__ import annotations

import argparse
import datetime as dt

from spark_jobs import storage

MARKER = "_SUCCESS"


def input_uri(root: str, model: str, date: str) -> str:
    return storage.join(storage.normalize(root), "incoming", model, f"ds={date}")


def output_uri(root: str, model: str, date: str) -> str:
    return storage.join(storage.normalize(root), "scores", model, f"ds={date}")


def iso_date(text: str) -> str:
    """An argparse type: a date as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
