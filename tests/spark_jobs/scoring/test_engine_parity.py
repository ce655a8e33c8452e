"""The two scoring engines give one result: the Arrow engine (the pod's, no JVM) and the Spark
engine (EMR's) take, refuse and score the same rows, with the same reasons in the same words."""

from __future__ import annotations

import json
import math
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_jobs import storage
from spark_jobs.data import sample_input
from spark_jobs.data.contract import CORRUPT, inspect_input, read_raw
from spark_jobs.data.partitions import input_uri, output_uri
from spark_jobs.scoring import score, score_arrow
from spark_jobs.spec import load_spec, parse_spec
from tests.conftest import BANK, SPEC, handmade_version
from tests.spark_jobs.data.test_types_by_meaning import CASES, ROLE, write_case
from tests.spark_jobs.data.test_types_by_meaning import SPEC as ONE_VALUE_SPEC

pytestmark = pytest.mark.spark

DATE, MODEL = "2026-11-20", "bank-marketing"


def spark_rows(spark, inp, spec, key):
    """Each row's reason and typed features by `key`, as the Spark engine checks it."""
    raw = read_raw(spark, inp, spec, spec.features)
    return {
        r[key]: (r[score.REASON], *(r[f] for f in spec.features))
        for r in score.check_rows(raw, spec).collect()
    }


def arrow_rows(inp, spec, key):
    """The same by the Arrow engine."""
    out = {}
    for uri in inp.files:
        for batch in score_arrow.raw_batches(inp, uri, spec):
            typed, checks = score_arrow.row_checks(batch, spec)
            _, why = score_arrow.reasons(batch.num_rows, checks)
            values = [typed[f].value.to_pylist() for f in spec.features]
            for i, k in enumerate(batch.column(key).to_pylist()):
                out[k] = (why[i].as_py(), *(v[i] for v in values))
    return out


def same(a, b):
    """Equal, NaN equal to NaN, and a float equal only to a float."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


def assert_same_rows(spark_side, arrow_side):
    assert spark_side.keys() == arrow_side.keys()
    differ = {
        k: (spark_side[k], arrow_side[k])
        for k in spark_side
        if not all(same(x, y) for x, y in zip(spark_side[k], arrow_side[k], strict=True))
    }
    assert not differ, differ


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_type_case_is_taken_or_refused_alike(spark, tmp_path, case, fmt):
    type_name, value_type, text, _ = CASES[case]
    if fmt == "csv" and text is None:
        pytest.skip("a type CSV cannot carry")
    spec = parse_spec(ONE_VALUE_SPEC.format(fmt=fmt, type=type_name, role=ROLE[type_name]))
    inp = inspect_input(str(write_case(tmp_path, fmt, value_type, text)), spec)
    assert_same_rows(spark_rows(spark, inp, spec, "y"), arrow_rows(inp, spec, "y"))


# Text as a CSV file may hold it, for every spec type: Java's and Spark's number grammar,
# whitespace, signs, suffixes, hexadecimal, overflow, and what looks like a number but is not.
ODD_TEXTS = [
    "41", " 41 ", "\t41\t", "+41", "-0041", "41.", "41.000", "41.5", ".5", "+.5", "5e2", "1E+5", "1e400",
    "-1e400", "1d", "1.1f", "2.5D", "0x1p3", "0x1.8P1d", "0x10", "inf", "INF", "-inf", "+inf", "Infinity",
    "-Infinity", "+Infinity", "infinity", "NaN", "nan", "-NaN", "+nan", " nan", "Inf ", "1_000", "１",
    "\u00a041", "41\u2003", "1,5", "abc", "1.5e", "--1", "2147483647", "2147483648", "-2147483648",
    "-2147483649", "9223372036854775807", "9223372036854775808", "99999999999999999999999", "0", "-0",
    "-0.0", "1e-5", "123456789.123", "1e7", "9999999", "0.001", "0.0001",
    "x" * 100, "\U0001f600" * 90,
]  # fmt: skip
TEXT_SPEC = """
name: texts
format: csv
csv: {delimiter: ",", quote: '"'}
target: {column: y, positive: "yes", negative: "no"}
columns:
  i: {type: integer, role: numeric, min: -5, max: 100}
  l: {type: long, role: numeric}
  d: {type: double, role: numeric, min: -1000, max: 1e10}
  s: {type: string, role: categorical}
  y: {type: string, role: target}
contract: {min_rows: 1}
"""


def test_odd_texts_are_read_alike(spark, tmp_path):
    import csv

    path = tmp_path / "texts.csv"
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "i", "l", "d", "s"])
        for n, text in enumerate(ODD_TEXTS):
            out.writerow([n, text, text, text, text])
        out.writerow([len(ODD_TEXTS), "", "", "", ""])  # every value missing
    spec = parse_spec(TEXT_SPEC)
    inp = inspect_input(str(path), spec, columns=spec.features)
    spark_side = spark_rows(spark, inp, spec, "id")
    assert_same_rows(spark_side, arrow_rows(inp, spec, "id"))
    # Not vacuous: values taken, values refused, and a range rule with its typed value.
    assert spark_side["0"][1:4] == (41, 41, 41.0)
    assert "i: not an integer: 41.5" in spark_side["7"][0]
    assert "d: above the maximum 1e+10: Infinity" not in spark_side["12"][0]  # not finite comes first


def dirty_day(root, fmt):
    """2,000 rows of bank.csv with values of every kind a day may hold wrong."""
    spec = load_spec(str(SPEC))
    sample_input.cut(str(BANK), spec, str(root), DATE, 2000, "csv")
    part = input_uri(str(root), MODEL, DATE)
    lines = storage.read_bytes(f"{part}/records.csv").decode().splitlines()
    header = lines[0].split(";")
    bad = {
        "age": ["abc", "200", "-4", "", " 41 ", "41.0", "+41", "1e2", "2147483648"],
        "balance": ["1.5", "NaN", "", "99999999999999"],
        "day": ["0", "32", "15.0"],
        "job": ["", "astronaut"],
        "duration": ["-1"],
    }
    n = 1
    for column, values in bad.items():
        at = header.index(column)
        for value in values:
            cells = lines[n].split(";")
            cells[at] = value
            lines[n] = ";".join(cells)
            n += 7
    lines[300] = ";".join(lines[300].split(";")[:5])  # too few fields
    lines[301] = lines[301] + ";extra"  # too many
    if fmt == "csv":
        storage.write_bytes(f"{part}/records.csv", ("\n".join(lines) + "\n").encode())
        return
    # Parquet typed as a data scientist might write it: integers as doubles with NaN, a null.
    split = [line.split(";") for line in lines[1:]]
    rows = [dict(zip(header, cells, strict=True)) for cells in split if len(cells) == len(header)]
    table = {name: [r.get(name) for r in rows] for name in header}

    def number(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    arrays = {
        name: pa.array([number(v) for v in values], pa.float64())
        if name in ("age", "balance", "day", "duration")
        else pa.array([None if number(v) is None else int(v) for v in values], pa.int64())
        if name in ("record_id", "campaign", "pdays", "previous")
        else pa.array([v if v not in (None, "") else None for v in values], pa.string())
        for name, values in table.items()
    }
    storage.remove_tree(part)
    path = f"{part}/records.parquet"
    fs, local = storage.filesystem(path)
    fs.makedirs(part, exist_ok=True)
    pq.write_table(pa.table(arrays), local)


def scored_by(engine, root, tmp_path):
    """Run the job with one engine on a copy of `root`; (summary, scores, rejected) by record_id."""
    where = tmp_path / engine
    shutil.copytree(root, where)
    args = ["--storage-root", str(where), "--model", MODEL, "--date", DATE, "--engine", engine]
    assert score.main([*args, "--max-rejected-ratio", "0.5"]) == 0
    out = output_uri(str(where), MODEL, DATE)
    summary = json.loads(storage.read_bytes(f"{out}/_summary.json"))
    scores = pq.read_table(out).to_pylist()
    rejected = pq.read_table(f"{out}/_rejected").to_pylist()
    return summary, {str(r["record_id"]): r for r in scores}, {str(r["record_id"]): r for r in rejected}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_dirty_day_scores_alike_through_both_engines(spark, tmp_path, fmt):
    root = tmp_path / "root"
    handmade_version(root)
    dirty_day(root, fmt)
    spark_summary, spark_scores, spark_rejected = scored_by("spark", root, tmp_path)
    arrow_summary, arrow_scores, arrow_rejected = scored_by("arrow", root, tmp_path)

    for key in ("rows_in", "rows_scored", "rows_rejected", "rejected_reasons", "input_fingerprint"):
        assert spark_summary[key] == arrow_summary[key], key
    assert spark_summary["rows_rejected"] >= 12  # the day's bad rows are there to compare
    assert spark_scores.keys() == arrow_scores.keys()
    for key, row in spark_scores.items():
        other = arrow_scores[key]
        assert other["probability"] == pytest.approx(row["probability"], abs=1e-9), key
        assert {k: v for k, v in other.items() if k != "probability"} == {
            k: v for k, v in row.items() if k != "probability"
        }, key
    assert list(arrow_scores.values())[0].keys() == list(spark_scores.values())[0].keys()  # same order
    # The rejected rows as read, with the same reasons (a malformed row's corrupt record too).
    assert spark_rejected.keys() == arrow_rejected.keys()
    for key, row in spark_rejected.items():
        assert arrow_rejected[key].keys() == row.keys(), key
        assert all(same(arrow_rejected[key][k], v) for k, v in row.items()), (key, row, arrow_rejected[key])
    if fmt == "csv":
        assert any(r[CORRUPT] for r in arrow_rejected.values())


# Parquet columns of every kind a day may bring, several values each (the last row all null).
def _odd_columns():
    import datetime as dt
    import decimal

    d = decimal.Decimal
    return {
        "f32": pa.array([1.1, math.nan, 3e9, -0.0, 41.0, None], pa.float32()),
        "f64": pa.array([0.1, 2.5, -math.inf, 1e-5, 4e9, None], pa.float64()),
        "i8": pa.array([1, -128, 127, 0, 100, None], pa.int8()),
        "u32": pa.array([0, 4294967295, 5, 41, 2**31, None], pa.uint32()),
        "u64": pa.array([2**64 - 1, 0, 2**63, 5, 2**53 + 1, None], pa.uint64()),
        "dec": pa.array(
            [d("1.500"), d("-0.001"), d("41.000"), d("99999999.999"), d("0"), None], pa.decimal128(11, 3)
        ),
        "big": pa.array([d(10**30), d(-(2**63)), d(2**31), d(7), d(-1), None], pa.decimal128(38, 0)),
        "half": pa.array(
            [d("3000000000.5"), d("1.0"), d("-1.5"), d(0), d(2**31), None], pa.decimal128(12, 1)
        ),
        "flag": pa.array([True, False, True, False, True, None], pa.bool_()),
        "day": pa.array([dt.date(2026, 11, 20)] * 5 + [None], pa.date32()),
        "at": pa.array([dt.datetime(2026, 11, 20, 1, 2, 3, 450000)] * 5 + [None], pa.timestamp("us")),
        "raw": pa.array([b"abc", b"", b"x" * 100, b"\xc3\xa9", b"1", None], pa.binary()),
        "list": pa.array([[1, None], [], [2], None, [3, 4], None], pa.list_(pa.int64())),
    }  # fmt: skip


@pytest.mark.parametrize("type_name", ["integer", "long", "double", "string"])
def test_parquet_values_of_every_kind_are_taken_or_refused_alike(spark, tmp_path, type_name):
    columns = _odd_columns()
    role = ROLE[type_name]
    spec = parse_spec(
        "name: kinds\nformat: parquet\ntarget: {column: y, positive: 'yes', negative: 'no'}\n"
        "contract: {min_rows: 1}\ncolumns:\n"
        + "".join(f"  {name}: {{type: {type_name}, role: {role}, max_null_ratio: 1}}\n" for name in columns)
        + "  y: {type: string, role: target}\n"
    )
    path = tmp_path / "kinds.parquet"
    pq.write_table(pa.table({"id": pa.array(range(6), pa.int64()), **columns}), path)
    inp = inspect_input(str(path), spec, columns=spec.features)
    spark_side = spark_rows(spark, inp, spec, "id")
    assert_same_rows(spark_side, arrow_rows(inp, spec, "id"))
    assert spark_side[0][0] and spark_side[5][0] is None  # refusals to compare; nulls are allowed


def test_csv_files_of_one_day_are_read_alike(spark, tmp_path):
    """Several files: a header in other capitals, a blank line of spaces, a malformed row, an
    empty file; each engine reads the same rows from them."""
    day = tmp_path / "day"
    day.mkdir()
    (day / "a.csv").write_text("id,i,l,d,s\n1,41,41,4.1,x\n2,abc,1,1,y\n")
    (day / "b.csv").write_text("ID,I,L,D,S\n3,7,7,7.5,z\n   \n4,8\n5,9,9,9,w,extra\n")
    (day / "c.csv").write_text("")
    spec = parse_spec(TEXT_SPEC)
    inp = inspect_input(str(day), spec, columns=spec.features)
    spark_side = spark_rows(spark, inp, spec, "id")
    assert sorted(spark_side) == ["1", "2", "3", "4", "5"]
    assert_same_rows(spark_side, arrow_rows(inp, spec, "id"))


def test_a_quote_left_open_is_refused_not_read_as_one_value(tmp_path):
    """Spark reads CSV line by line; read as a quoted value running on, the rest of the file
    would be one row. The Arrow engine refuses the file instead, naming the column."""
    from spark_jobs.errors import DataContractError

    path = tmp_path / "day.csv"
    path.write_text('id,i,l,d,s\n1,41,41,4.1,"open\n' + "".join(f"{n},1,1,1,x\n" for n in range(2, 500)))
    spec = parse_spec(TEXT_SPEC)
    inp = inspect_input(str(path), spec, columns=spec.features)
    with pytest.raises(DataContractError, match="has a quoted value of column 's' that spans lines"):
        arrow_rows(inp, spec, "id")
