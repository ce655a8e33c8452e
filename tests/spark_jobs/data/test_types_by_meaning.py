"""Values are checked by what they mean, whatever the file format: one table of cases, run for CSV
(every value text) and for Parquet (values with their own types), through scoring's row checks and
training's data contract. A value is taken exactly or refused with the reason; never changed."""

from __future__ import annotations

import datetime as dt
import decimal
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_jobs.data.contract import inspect_input, read_checked, read_raw
from spark_jobs.errors import DataContractError
from spark_jobs.scoring import score
from spark_jobs.spec import parse_spec

# A spec with one feature, `v`, of the type under test.
SPEC = """
name: types
format: {fmt}
target: {{column: y, positive: "yes", negative: "no"}}
columns:
  v: {{type: {type}, role: {role}}}
  y: {{type: string, role: target}}
contract: {{min_rows: 1}}
"""

OUT_32 = "outside the range of a 32-bit integer"
# (spec type, Parquet value and Arrow type, CSV text, what is expected: the typed value, or the
# reason the value is refused, for Parquet and for CSV when they differ as text and types do)
CASES = {
    "integer-int32": ("integer", (41, pa.int32()), "41", 41),
    "integer-int64-in-range": ("integer", (-(2**31), pa.int64()), str(-(2**31)), -(2**31)),
    "integer-int64-wraps": ("integer", (2**40, pa.int64()), str(2**40), OUT_32),
    "integer-just-over": ("integer", (2**31, pa.int64()), str(2**31), OUT_32),
    "integer-fraction": ("integer", (41.7, pa.float64()), "41.7", ("not a whole number", "not an integer")),
    "integer-whole-double": ("integer", (41.0, pa.float64()), "41.0", 41),
    "integer-nan": ("integer", (math.nan, pa.float64()), "NaN", ("not a finite number", "not an integer")),
    "integer-huge-double": ("integer", (1e12, pa.float64()), "1000000000000", OUT_32),
    "integer-boolean": (
        "integer",
        (True, pa.bool_()),
        "true",
        ("of type boolean, not an integer", "not an integer"),
    ),
    "integer-decimal-whole": ("integer", (decimal.Decimal("41.00"), pa.decimal128(10, 2)), "41.00", 41),
    "integer-decimal-fraction": (
        "integer",
        (decimal.Decimal("41.50"), pa.decimal128(10, 2)),
        "41.50",
        ("not a whole number", "not an integer"),
    ),
    "integer-timestamp": (
        "integer",
        (dt.datetime(2026, 11, 20), pa.timestamp("us")),
        "2026-11-20 00:00:00",
        ("of type timestamp_ntz, not an integer", "not an integer"),
    ),
    "integer-as-text": ("integer", ("41", pa.string()), "41", 41),
    "long-int64": ("long", (2**40, pa.int64()), str(2**40), 2**40),
    "long-beyond": (
        "long",
        (1e19, pa.float64()),
        "10000000000000000000",
        "outside the range of a 64-bit integer",
    ),
    "double-double": ("double", (41.7, pa.float64()), "41.7", 41.7),
    "double-int64": ("double", (41, pa.int64()), "41", 41.0),
    "double-infinite": ("double", (math.inf, pa.float64()), "inf", "not a finite number"),
    "double-not-a-number": ("double", ("abc", pa.string()), "abc", "not a number"),
    "double-inexact-int64": (
        "double",
        (2**60 + 1, pa.int64()),
        None,
        "outside the integers a double holds exactly",
    ),
    "double-boolean": ("double", (False, pa.bool_()), None, "of type boolean, not a number"),
    "string-text": ("string", ("admin.", pa.string()), "admin.", "admin."),
    "string-int64": ("string", (3, pa.int64()), None, "of type bigint, not text"),
    "string-boolean": ("string", (True, pa.bool_()), None, "of type boolean, not text"),
    "string-list": ("string", (["a", "b"], pa.list_(pa.string())), None, "of type array<string>, not text"),
}
ROLE = {"integer": "numeric", "long": "numeric", "double": "numeric", "string": "categorical"}


def write_case(tmp_path, fmt, value_type, text):
    if fmt == "csv":
        path = tmp_path / "day.csv"
        path.write_text(f"v,y\n{text},yes\n")
    else:
        value, arrow_type = value_type
        table = pa.table({"v": pa.array([value], arrow_type), "y": pa.array(["yes"])})
        path = tmp_path / "day.parquet"
        pq.write_table(table, path)
    return path


def _cases():
    for name, (type_name, value_type, text, expected) in CASES.items():
        for fmt in ("parquet", "csv"):
            if fmt == "csv" and text is None:
                continue  # a type CSV cannot carry
            want = expected[0 if fmt == "parquet" else 1] if isinstance(expected, tuple) else expected
            yield pytest.param(type_name, value_type, text, fmt, want, id=f"{name}-{fmt}")


@pytest.mark.parametrize(("type_name", "value_type", "text", "fmt", "expected"), list(_cases()))
def test_a_value_is_taken_exactly_or_refused_with_its_reason(
    spark, tmp_path, type_name, value_type, text, fmt, expected
):
    spec = parse_spec(SPEC.format(fmt=fmt, type=type_name, role=ROLE[type_name]))
    inp = inspect_input(str(write_case(tmp_path, fmt, value_type, text)), spec)
    raw = read_raw(spark, inp, spec, list(spec.columns))
    [row] = score.check_rows(raw, spec).collect()
    refused = (
        isinstance(expected, str)
        and type_name != "string"
        or expected
        in (
            "of type bigint, not text",
            "of type boolean, not text",
            "of type array<string>, not text",
        )
    )

    # Scoring: the row is rejected with the reason, or scored with exactly the value.
    if refused:
        assert row[score.REASON] is not None and f"v: {expected}: " in row[score.REASON], row
        assert row["v"] is None
        [kept] = score.rejected_rows(raw, spec).collect()
        assert repr(kept["v"]) == repr(raw.first()["v"])  # the rejected row as read, not changed
    else:
        assert row[score.REASON] is None, row
        assert row["v"] == expected and type(row["v"]) is type(expected)

    # Training: the contract refuses the input, naming the column and why; or it reads the value.
    if refused:
        with pytest.raises(DataContractError, match=f"column 'v': 1 value\\(s\\) are {expected}, e.g. "):
            read_checked(spark, inp, spec)
    else:
        assert read_checked(spark, inp, spec).first()["v"] == expected
