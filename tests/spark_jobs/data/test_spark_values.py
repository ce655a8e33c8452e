"""Spark's casts and printing of values, in plain Python: the figures are what Spark 3.5 on Java 17
answered for the same values (tests/spark_jobs/scoring/test_engine_parity.py asks Spark itself)."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from spark_jobs.data.row_rules import NOT_INTEGER, OUT_OF_RANGE
from spark_jobs.data.spark_values import double_text, sample, simple_string, text_to_double, text_to_integer


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.001, "0.001"), (0.0001, "1.0E-4"), (1e7, "1.0E7"), (9999999.0, "9999999.0"), (1.5, "1.5"),
        (-1500000.0, "-1500000.0"), (1e21, "1.0E21"), (123456789.123, "1.23456789123E8"), (1e-5, "1.0E-5"),
        (2.0 / 3, "0.6666666666666666"), (100.0, "100.0"), (-0.0, "-0.0"), (math.nan, "NaN"),
        (math.inf, "Infinity"), (-math.inf, "-Infinity"),
    ],
)  # fmt: skip
def test_a_double_prints_as_java_prints_it(value, text):
    assert double_text(value) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0), (" 1 ", 1.0), ("\t1\t", 1.0), ("1d", 1.0), ("1f", 1.0), ("0x1p3", 8.0), ("1E+5", 1e5),
        (".5", 0.5), ("5.", 5.0), ("INF", math.inf), ("-inf", -math.inf), ("+Infinity", math.inf),
        ("1e400", math.inf), ("+nan", None), ("1_000", None), ("\u00a01", None), ("0x10", None),
        ("", None), ("1,5", None), ("abc", None),
    ],
)  # fmt: skip
def test_text_reads_as_a_double_as_spark_reads_it(text, value):
    assert text_to_double(text) == value
    for nan in ("NaN", "nan", "-NaN", " nan"):
        assert math.isnan(text_to_double(nan))


def test_text_reads_as_an_integer_or_says_why_not():
    assert text_to_integer(" +41.000 ", "integer") == (41, None)
    assert text_to_integer("41.5", "integer") == (None, NOT_INTEGER)
    assert text_to_integer("2147483648", "integer") == (None, OUT_OF_RANGE)
    assert text_to_integer("2147483648", "long") == (2147483648, None)


def test_names_and_samples():
    assert simple_string(pa.int64()) == "bigint" and simple_string(pa.timestamp("us")) == "timestamp_ntz"
    assert (
        simple_string(pa.list_(pa.int32())) == "array<int>"
        and simple_string(pa.decimal128(10, 2)) == "decimal(10,2)"
    )
    assert (
        sample("x" * 100) == "x" * 80 + "..." and sample(True) == "true" and sample([1, None]) == "[1, null]"
    )
