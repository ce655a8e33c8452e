"""Batch scoring: the row checks, the pandas UDF, and the job's commits and failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from spark_jobs import storage
from spark_jobs.data import sample_input
from spark_jobs.data.contract import CORRUPT
from spark_jobs.data.partitions import MARKER, input_uri, output_uri
from spark_jobs.registry.portable import Scorer
from spark_jobs.registry.store import PORTABLE
from spark_jobs.scoring import score
from tests.conftest import BANK, ROOT, SPEC, bank_records, handmade_version

DATE = "2026-11-20"
MODEL = "bank-marketing"


def raw_rows(spark, bank_spec, rows):
    """A raw read as the CSV reader gives it: every column text, plus the corrupt-record column."""
    from pyspark.sql import types as T

    names = ["record_id", *bank_spec.features]
    schema = T.StructType([T.StructField(n, T.StringType()) for n in [*names, CORRUPT]])
    return spark.createDataFrame([[r.get(n) for n in [*names, CORRUPT]] for r in rows], schema)


def as_text(record, record_id):
    return {"record_id": str(record_id)} | {k: None if v is None else str(v) for k, v in record.items()}


def test_row_checks_give_every_reason(spark, bank_spec):
    good, *_ = bank_records(1)
    rows = [
        as_text(good, 1),
        as_text(good | {"age": "abc"}, 2),
        as_text(good | {"age": 200, "day": 0}, 3),
        as_text(good | {"job": None}, 4),
        as_text(good, 5) | {CORRUPT: "1;2;3"},
        as_text(good | {"balance": "1.5"}, 6),
    ]
    checked = score.check_rows(raw_rows(spark, bank_spec, rows), bank_spec)
    reasons = {r["record_id"]: r[score.REASON] for r in checked.collect()}
    assert reasons == {
        "1": None,
        "2": "age: not an integer: abc",
        "3": "age: above the maximum 130: 200; day: below the minimum 1: 0",
        "4": "job: missing",
        "5": "malformed row: does not split into the header's fields",
        "6": "balance: not an integer: 1.5",
    }
    assert dict(checked.dtypes)["age"] == "int" and dict(checked.dtypes)["record_id"] == "string"
    counts = score.rejection_counts(raw_rows(spark, bank_spec, rows), bank_spec)
    assert counts["rows"] == 6 and counts["rejected"] == 5
    assert counts["age: not an integer"] == 1 and counts["day: below the minimum 1"] == 1


def test_the_models_column_expression_scores_as_the_portable_model(spark, bank_spec, tmp_path):
    registry = handmade_version(tmp_path)
    doc = json.loads(registry.read_verified("v1", PORTABLE))
    scorer = Scorer(doc)
    records = bank_records(400)
    records[0] = records[0] | {"job": "astronaut"}  # unknown category: scored as Spark would
    raw = raw_rows(spark, bank_spec, [as_text(r, i) for i, r in enumerate(records)]).repartition(4)
    scored = score.score_rows(score.check_rows(raw, bank_spec), doc, "v1").collect()
    assert len(scored) == 400
    for row in scored:
        expected = scorer.probability(records[int(row["record_id"])])
        assert row["probability"] == pytest.approx(expected, abs=1e-12)
        assert row["prediction"] == scorer.label(expected) and row["model_version"] == "v1"


@pytest.fixture
def scoring_root(tmp_path):
    handmade_version(tmp_path)
    return tmp_path


def run_score(root, *extra):
    return score.main(["--storage-root", str(root), "--model", MODEL, "--date", DATE, *extra])


def read_scores(spark, root):
    return spark.read.parquet(storage.spark_uri(output_uri(str(root), MODEL, DATE)))


def test_scores_a_days_partition_and_commits_it_whole(spark, scoring_root, capsys):
    sample_input.cut(str(BANK), _spec(), str(scoring_root), DATE, 300, "csv")
    assert run_score(scoring_root, "--run-id", "run-1") == 0
    summary = json.loads(capsys.readouterr().out)
    out = output_uri(str(scoring_root), MODEL, DATE)
    assert summary["rows_in"] == summary["rows_scored"] == 300 and summary["rows_rejected"] == 0
    assert summary["output"] == out and summary["model_version"] == "v1" and summary["run_id"] == "run-1"
    assert json.loads(storage.read_bytes(f"{out}/_summary.json")) == summary
    df = read_scores(spark, scoring_root)
    assert df.count() == 300
    assert {"record_id", "age", "probability", "prediction", "model_version"} <= set(df.columns)
    assert storage.exists(f"{out}/{MARKER}")
    assert not storage.list_files(f"{scoring_root}/scores/{MODEL}/_staging")  # nothing left behind


def test_parquet_input_and_a_rerun_replaces_the_partition(spark, scoring_root, capsys):
    sample_input.cut(str(BANK), _spec(), str(scoring_root), DATE, 200, "csv")
    assert run_score(scoring_root, "--run-id", "first") == 0
    first = set(storage.list_files(output_uri(str(scoring_root), MODEL, DATE)))
    sample_input.cut(str(BANK), _spec(), str(scoring_root), DATE, 120, "parquet")
    assert run_score(scoring_root, "--run-id", "second") == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["input_format"] == "parquet" and summary["rows_scored"] == 120
    assert read_scores(spark, scoring_root).count() == 120  # replaced, not appended
    old_parts = {f for f in first if f.startswith("part-")}
    assert old_parts and not old_parts & set(storage.list_files(output_uri(str(scoring_root), MODEL, DATE)))


def test_rejected_rows_are_kept_and_counted_and_too_many_fail_the_run(spark, scoring_root, capsys):
    part = input_uri(str(scoring_root), MODEL, DATE)
    sample_input.cut(str(BANK), _spec(), str(scoring_root), DATE, 200, "csv")
    lines = storage.read_bytes(f"{part}/records.csv").decode().splitlines()
    header = lines[0].split(";")
    age = header.index("age")
    for i in (1, 2, 3):  # three rows with an impossible age
        cells = lines[i].split(";")
        cells[age] = "-4"
        lines[i] = ";".join(cells)
    storage.write_bytes(f"{part}/records.csv", ("\n".join(lines) + "\n").encode())

    assert run_score(scoring_root, "--max-rejected-ratio", "0.01") == 3
    err = capsys.readouterr().err
    assert "3 of 200 row(s)" in err and "age: below the minimum 0 (3)" in err and "nothing was written" in err
    assert not storage.exists(output_uri(str(scoring_root), MODEL, DATE))

    assert run_score(scoring_root) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_scored"], summary["rows_rejected"]) == (197, 3)
    assert summary["rejected_reasons"] == {"age: below the minimum 0": 3}
    rejected = spark.read.parquet(storage.spark_uri(summary["rejected_output"])).collect()
    assert sorted(r[score.REASON] for r in rejected) == ["age: below the minimum 0: -4"] * 3
    assert read_scores(spark, scoring_root).count() == 197  # readers of the scores skip _rejected


def test_missing_partition_and_corrupt_files_fail_clearly(scoring_root, capsys):
    assert run_score(scoring_root) == 3
    assert f"input not found: {input_uri(str(scoring_root), MODEL, DATE)}" in capsys.readouterr().err

    part = input_uri(str(scoring_root), MODEL, DATE)
    storage.write_bytes(f"{part}/records.parquet", b"PAR1 this is not parquet")
    assert run_score(scoring_root) == 3
    assert "cannot be read as parquet" in capsys.readouterr().err

    storage.remove_tree(part)
    storage.write_bytes(f"{part}/records.csv", bytes(range(256)) * 4)
    assert run_score(scoring_root) == 3
    assert "is not utf-8 text" in capsys.readouterr().err
    assert not storage.exists(output_uri(str(scoring_root), MODEL, DATE))


def test_unknown_model_version_fails_with_the_registry_exit_code(scoring_root, capsys):
    sample_input.cut(str(BANK), _spec(), str(scoring_root), DATE, 50, "csv")
    assert run_score(scoring_root, "--model-version", "nope") == 4
    assert "no complete version 'nope'" in capsys.readouterr().err


@pytest.mark.spark
def test_a_job_killed_mid_write_leaves_the_old_partition_and_a_rerun_succeeds(scoring_root):
    """SIGKILL while the new partition is being written: readers still see the earlier run's
    partition whole, and the next run cleans up and commits."""
    import pyarrow.parquet as pq

    sample_input.cut(str(BANK), _spec(), str(scoring_root), DATE, 100, "csv")
    env = os.environ | {"SPARK_LOCAL_MASTER": "local[2]"}
    command = [sys.executable, "-m", "spark_jobs", "score", "--storage-root", str(scoring_root)]
    # The Spark engine: it takes seconds to write this day, long enough to be killed in the middle;
    # the commit (staging, claim, replace) is the same code for both engines.
    command += ["--model", MODEL, "--date", DATE, "--engine", "spark"]
    subprocess.run([*command, "--run-id", "old"], cwd=ROOT, env=env, check=True, capture_output=True)

    # A big day: enough rows that writing them takes seconds.
    big = ROOT / "data" / "bank" / "bank-full.csv"
    sample_input.cut(str(big), _spec(), str(scoring_root), DATE, 45_000, "csv")
    staging = scoring_root / "scores" / MODEL / "_staging"
    proc = subprocess.Popen(
        [*command, "--run-id", "killed"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(staging.glob("*/_temporary")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the job ended before it could be killed mid-write"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    out = output_uri(str(scoring_root), MODEL, DATE)
    assert json.loads(storage.read_bytes(f"{out}/_summary.json"))["run_id"] == "old"
    assert pq.read_table(out).num_rows == 100
    assert list(staging.iterdir())  # the killed run's leftovers

    # Another run is refused while the killed run's claim lives; its retry (same run id) takes it over.
    other = subprocess.run([*command, "--run-id", "other"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert other.returncode == 4 and "is being written by killed" in other.stderr, other.stderr
    subprocess.run([*command, "--run-id", "killed"], cwd=ROOT, env=env, check=True, capture_output=True)
    summary = json.loads(storage.read_bytes(f"{out}/_summary.json"))
    assert summary["run_id"] == "killed" and summary["rows_scored"] == 45_000
    assert pq.read_table(out).num_rows == 45_000
    assert not list(staging.iterdir())


def _spec():
    from spark_jobs.spec import load_spec

    return load_spec(str(SPEC))


def test_a_replacement_killed_between_its_two_renames_is_undone_by_the_next_run(tmp_path):
    """Killed after moving the old partition aside and before moving the new one in: the old
    partition comes back; one killed after both renames only leaves the old copy, which goes."""
    base = tmp_path / "scores" / MODEL
    (base / "_replaced" / "ds=2026-11-19-123-abcd").mkdir(parents=True)
    (base / "_replaced" / "ds=2026-11-19-123-abcd" / "_summary.json").write_text('{"run_id": "old"}')
    (base / "_replaced" / "ds=2026-11-18-456-ef01").mkdir()
    (base / "ds=2026-11-18").mkdir()
    (base / "_staging" / "ds=2026-11-17-0a0a").mkdir(parents=True)
    gone = score.remove_leftovers(str(tmp_path), MODEL)
    assert json.loads((base / "ds=2026-11-19" / "_summary.json").read_text()) == {"run_id": "old"}
    assert sorted(gone) == [
        "_replaced/ds=2026-11-18-456-ef01",
        "_replaced/ds=2026-11-19-123-abcd",
        "_staging/ds=2026-11-17-0a0a",
    ]
    assert not list((base / "_replaced").iterdir()) and not list((base / "_staging").iterdir())
