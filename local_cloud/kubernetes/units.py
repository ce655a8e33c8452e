"""Quantities and times as Kubernetes writes them."""

from __future__ import annotations

import time
from decimal import Decimal


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity (`512Mi`, `1G`, `500m`, `2`, `1e3`) as a number of base units, by the
    official client's parser; refused in the API server's words."""
    from kubernetes.utils import parse_quantity as parse

    try:
        return Decimal(parse(value))
    except ValueError:
        raise ValueError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        ) from None


def rfc3339(ns: int | None = None) -> str:
    """A timestamp as Kubernetes' metav1.Time writes it (seconds)."""
    seconds = (time.time_ns() if ns is None else ns) // 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def rfc3339_nano(ns: int) -> str:
    """A timestamp as Go's RFC3339Nano writes it: nanoseconds, trailing zeros dropped."""
    fraction = f"{ns % 1_000_000_000:09d}".rstrip("0")
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"
