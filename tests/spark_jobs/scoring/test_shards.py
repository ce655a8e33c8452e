"""A day split into shards: the plan, one pod's shard, and the commit that publishes the day whole."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_jobs import storage
from spark_jobs.data import sample_input
from spark_jobs.data.contract import inspect_input
from spark_jobs.data.partitions import input_uri, output_uri
from spark_jobs.errors import DataContractError, IncompleteShardsError
from spark_jobs.scoring import score, shards
from spark_jobs.spec import load_spec
from tests.conftest import BANK, SPEC, handmade_version

DATE, MODEL, RUN = "2026-11-20", "bank-marketing", "scheduled__2026-11-20T00:00:00+00:00"


@pytest.fixture
def day(tmp_path):
    """A registry version and a Parquet day of two files: 1,500 rows in row groups of 400, and 200."""
    handmade_version(tmp_path)
    spec = load_spec(str(SPEC))
    sample_input.cut(str(BANK), spec, str(tmp_path), DATE, 1700, "parquet")
    part = input_uri(str(tmp_path), MODEL, DATE)
    table = pq.read_table(f"{part}/records.parquet")
    storage.remove_tree(f"{part}/records.parquet")
    pq.write_table(table.slice(0, 1500), f"{part}/a.parquet", row_group_size=400)
    pq.write_table(table.slice(1500), f"{part}/b.parquet")
    return tmp_path, spec


def planned(root, spec, target, most):
    inp = inspect_input(input_uri(str(root), MODEL, DATE), spec, columns=spec.features, fmt="auto")
    return inp, shards.plan(inp, target, most)


def test_the_plan_splits_large_parquet_files_by_row_group_in_order(day):
    root, spec = day
    inp, plan = planned(root, spec, 600, 8)
    pieces = [(inp.files[p["file"]].rsplit("/", 1)[-1], p["row_groups"]) for s in plan for p in s["parts"]]
    assert pieces == [
        ("a.parquet", [0]),
        ("a.parquet", [1]),
        ("a.parquet", [2]),
        ("a.parquet", [3]),
        ("b.parquet", None),
    ]
    assert len(plan) == 3 and all(s["count"] == 3 for s in plan) and [s["index"] for s in plan] == [0, 1, 2]
    assert sum(s["rows"] for s in plan) == 1700 and max(s["rows"] for s in plan) <= 800
    # At most max_shards; one shard when the day fits one.
    assert len(shards.plan(inp, 100, 2)) == 2
    assert [len(s["parts"]) for s in shards.plan(inp, 10_000, 8)] == [2]
    with pytest.raises(ValueError, match="at least 1"):
        shards.plan(inp, 0, 8)


def score_shard(root, shard, *extra):
    args = ["--storage-root", str(root), "--model", MODEL, "--date", DATE, "--run-id", RUN]
    return score.main([*args, "--shard", json.dumps(shard), *extra])


def test_shards_scored_apart_commit_as_the_day_a_single_pod_would_write(day, tmp_path_factory, capsys):
    root, spec = day
    inp, plan = planned(root, spec, 600, 8)
    for shard in plan:
        assert score_shard(root, shard) == 0
    out = output_uri(str(root), MODEL, DATE)
    assert not storage.exists(out)  # nothing visible before the commit
    summary = shards.commit(str(root), MODEL, DATE, RUN, len(plan), inp.fingerprint, 0.05)
    assert summary["shards"] == 3 and summary["rows_in"] == summary["rows_scored"] == 1700
    assert json.loads(storage.read_bytes(f"{out}/_summary.json")) == summary
    assert not storage.exists(shards.shards_uri(str(root), MODEL, DATE, RUN))  # shard folders gone
    sharded = pq.read_table(out).to_pylist()

    # The same day in one pod, without shards: the same rows, the same scores.
    capsys.readouterr()
    assert (
        score.main(["--storage-root", str(root), "--model", MODEL, "--date", DATE, "--run-id", "whole"]) == 0
    )
    whole = pq.read_table(out).to_pylist()
    assert sorted(sharded, key=lambda r: r["record_id"]) == sorted(whole, key=lambda r: r["record_id"])


def test_a_failed_shard_is_scored_again_alone_and_only_a_complete_day_commits(day):
    root, spec = day
    inp, plan = planned(root, spec, 600, 8)
    assert score_shard(root, plan[0]) == 0
    assert score_shard(root, plan[2]) == 0
    with pytest.raises(IncompleteShardsError, match="shard 1 of 3 has no summary"):
        shards.commit(str(root), MODEL, DATE, RUN, 3, inp.fingerprint, 0.05)
    assert not storage.exists(output_uri(str(root), MODEL, DATE))
    first = storage.list_files(shards.shard_uri(str(root), MODEL, DATE, RUN, 0))
    assert score_shard(root, plan[1]) == 0  # the retry of the failed one: the others stay as they are
    assert storage.list_files(shards.shard_uri(str(root), MODEL, DATE, RUN, 0)) == first
    assert shards.commit(str(root), MODEL, DATE, RUN, 3, inp.fingerprint, 0.05)["rows_in"] == 1700


def test_the_commit_judges_the_whole_day_and_refuses_a_changed_input(day):
    root, spec = day
    inp, plan = planned(root, spec, 600, 8)
    # Shard 2 (b.parquet) is all bad rows: 200 of 1,700 rejected, 11.8% of the day.
    part = input_uri(str(root), MODEL, DATE)
    table = pq.read_table(f"{part}/b.parquet")
    ages = pa.array([-1] * table.num_rows, table.schema.field("age").type)
    pq.write_table(table.set_column(table.schema.get_field_index("age"), "age", ages), f"{part}/b.parquet")
    inp = inspect_input(part, spec, columns=spec.features, fmt="auto")
    for shard in plan:
        assert score_shard(root, shard) == 0  # no shard judges the day on its own
    with pytest.raises(DataContractError, match=r"200 of 1700 row\(s\).*nothing was written"):
        shards.commit(str(root), MODEL, DATE, RUN, 3, inp.fingerprint, 0.05)
    assert not storage.exists(output_uri(str(root), MODEL, DATE))

    for shard in plan:
        assert score_shard(root, shard) == 0
    with pytest.raises(IncompleteShardsError, match="its input is not the planned one"):
        shards.commit(str(root), MODEL, DATE, RUN, 3, "sha256:planned-before-the-change", 0.5)
    summary = shards.commit(str(root), MODEL, DATE, RUN, 3, inp.fingerprint, 0.5)
    assert summary["rows_rejected"] == 200 and summary["rejected_reasons"] == {
        "age: below the minimum 0": 200
    }


def test_a_pod_says_how_far_it_is_per_file_while_it_reads_and_its_totals_at_the_end(day, caplog, monkeypatch):
    import logging

    from spark_jobs.scoring import score_arrow

    root, spec = day
    _, plan = planned(root, spec, 10_000, 1)
    monkeypatch.setattr(score_arrow, "BATCH_ROWS", 500)  # a.parquet in several batches
    monkeypatch.setattr(score_arrow, "PROGRESS_SECONDS", 0.0)  # a progress line after each
    with caplog.at_level(logging.INFO, logger="spark_jobs"):
        assert score_shard(root, plan[0]) == 0
    said = [r.getMessage() for r in caplog.records]
    progress = [m for m in said if m.startswith("a.parquet: ") and " read so far, " in m]
    assert progress[0] == "a.parquet: 400 row(s) read so far, 0 rejected, 400 scored", said
    assert progress[-1] == "a.parquet: 1,500 row(s) read so far, 0 rejected, 1,500 scored"
    assert "a.parquet: 1,500 row(s) read, 0 rejected, 1,500 scored" in said
    assert "b.parquet: 200 row(s) read, 0 rejected, 200 scored" in said
    (done,) = [m for m in said if m.startswith("shard 0 of 1: ")]
    assert (
        done.startswith("shard 0 of 1: 1,700 row(s) read, 0 rejected, 1,700 scored in ") and "rows/s" in done
    )


def test_a_pod_whose_input_is_not_utf8_always_exits_3_never_134(tmp_path):
    """Arrow's CSV reader leaves threads behind when a read fails; the interpreter's teardown
    then aborted about one exit in five on a busy machine (SIGABRT, 134: a crash, retried)
    instead of the job's 3. The pod's own command, run 16 times, 4 at a time."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    handmade_version(tmp_path)
    spec = load_spec(str(SPEC))
    sample_input.cut(str(BANK), spec, str(tmp_path), DATE, 300, "csv")
    records = f"{input_uri(str(tmp_path), MODEL, DATE)}/records.csv"
    data = storage.read_bytes(records)
    storage.write_bytes(records, data[:-40] + b"\xe4" + data[-40:])  # Latin-1, in the last row
    _, plan = planned(tmp_path, spec, 10_000, 1)
    args = ["--storage-root", str(tmp_path), "--model", MODEL, "--date", DATE, "--run-id", RUN]
    command = [sys.executable, "-m", "spark_jobs", "score", *args, "--shard", json.dumps(plan[0])]

    def run(_: int) -> tuple[int, str]:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stderr

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(run, range(16)))
    assert [code for code, _ in runs] == [3] * 16, [err[-300:] for code, err in runs if code != 3]
    assert all("records.csv is not utf-8 text" in err for _, err in runs)


def test_a_bad_shard_argument_is_refused_before_any_work(day, capsys):
    root, _ = day
    for bad in (
        "{",
        '{"index": 3, "count": 3, "parts": [{"file": "x"}]}',
        '{"index": 0, "count": 1, "parts": []}',
    ):
        with pytest.raises(SystemExit):
            score_shard(root, json.loads(bad) if bad != "{" else bad)
        assert "expected a shard as JSON" in capsys.readouterr().err
    shard = {"index": 0, "count": 1, "parts": [{"file": 7, "row_groups": None}]}
    assert score_shard(root, shard) == 3
    assert "file 7 of the plan is not there: the input" in capsys.readouterr().err


def test_a_commit_that_fails_half_way_is_retried_whole_and_publishes_only_each_shards_own_parts(
    day, monkeypatch
):
    root, spec = day
    inp, plan = planned(root, spec, 600, 8)
    for shard in plan:
        assert score_shard(root, shard) == 0
    # An attempt of shard 1 that lost its pod but still wrote a part: not in the shard's summary.
    scored_by_shard_0 = pq.read_table(shards.shard_uri(str(root), MODEL, DATE, RUN, 0))
    pq.write_table(
        scored_by_shard_0, shards.shard_uri(str(root), MODEL, DATE, RUN, 1) + "/part-stray.parquet"
    )

    copied = []

    def copy_then_fail(shard, parts, staging):
        if copied:
            raise OSError("connection reset")  # the commit dies after copying shard 0
        copied.append(shard)
        real_copy(shard, parts, staging)

    real_copy = shards._copy_parts
    monkeypatch.setattr(shards, "_copy_parts", copy_then_fail)
    with pytest.raises(OSError):
        shards.commit(str(root), MODEL, DATE, RUN, 3, inp.fingerprint, 0.05)
    monkeypatch.setattr(shards, "_copy_parts", real_copy)
    assert not storage.exists(output_uri(str(root), MODEL, DATE))

    summary = shards.commit(str(root), MODEL, DATE, RUN, 3, inp.fingerprint, 0.05)  # the retry
    out = output_uri(str(root), MODEL, DATE)
    assert summary["rows_in"] == 1700 and pq.read_table(out).num_rows == 1700  # every shard, no stray rows
    # The commit task cleared and run again: the day is in place, nothing to do, the same answer.
    assert shards.commit(str(root), MODEL, DATE, RUN, 3, inp.fingerprint, 0.05) == summary


def test_the_command_line_plans_and_commits_as_the_dag_tasks_call_it(day, capsys):
    root, spec = day
    where = ["--storage-root", str(root), "--model", MODEL, "--date", DATE]
    assert shards.main(["plan", *where, "--target-rows", "600", "--max-shards", "8"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["model_version"] == "v1" and len(planned["shards"]) == 3
    for shard in planned["shards"]:
        assert score_shard(root, shard) == 0
    capsys.readouterr()
    commit = [
        "--run-id",
        RUN,
        "--shards",
        "3",
        "--fingerprint",
        planned["fingerprint"],
        "--max-rejected-ratio",
        "0.05",
    ]
    assert shards.main(["commit", *where, *commit]) == 0
    assert json.loads(capsys.readouterr().out)["rows_in"] == 1700
