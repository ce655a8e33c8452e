"""`make run`'s road with its default storage root, the emulator's S3: the input is put in the
bucket, the EMR step writes the model through S3A, the next emulator (spot_predictions, then
batch_scoring's pod) reads what the last one wrote, and `make show` copies the report out."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from local_cloud.airflow.offline import DEFAULT_STORAGE_ROOT
from local_cloud.kubernetes.containers import describe, find_engine
from tests.conftest import BANK_FULL as BANK
from tests.conftest import ROOT

pytestmark = [pytest.mark.spark, pytest.mark.emulator, pytest.mark.airflow]

BUCKET, _, PREFIX = DEFAULT_STORAGE_ROOT.removeprefix("s3://").partition("/")


def _run(*args: str) -> str:
    command = [sys.executable, "-m", *args]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_make_runs_road_reads_and_writes_the_emulators_s3(tmp_path):
    home = tmp_path / "home"
    date = dt.date.today().isoformat()
    where = ["--home", str(home), "--input", str(BANK)]
    assert "success          publish_champion" in _run("local_cloud.run", "nightly_training", *where)
    spot = _run("local_cloud.run", "spot_predictions", *where)
    assert f"s3://{BUCKET}/{PREFIX}/predictions/spot/" in spot and "record 1:" in spot
    cloud = ["local_cloud.with_cloud", "--home", str(home), "--bucket", BUCKET, "--", sys.executable, "-m"]
    spec = ["--spec", "specs/bank_marketing.yaml", "--storage-root", DEFAULT_STORAGE_ROOT]
    _run(*cloud, "spark_jobs", "sample_input", "--source", str(BANK), *spec, "--date", date)
    scores = _run("local_cloud.run", "batch_scoring", *where, "--conf", json.dumps({"date": date}))
    assert f"s3://{BUCKET}/{PREFIX}/scores/bank-marketing/ds={date}:" in scores
    # The pod ran as a container of docker/jobs.Dockerfile where an engine answers (CI: podman).
    assert describe(find_engine()) in (home / "emulator.log").read_text()

    # The policies in aws/iam/ allow each road on S3: a day of two files in two shards (two pods
    # side by side as the pods' role, the commit copying their parts as the worker's), then a day
    # on the EMR road (the step reads and writes S3 as the cluster's instance profile).
    two_files, on_emr = (str(dt.date.today() - dt.timedelta(days=n)) for n in (1, 2))
    for day in (two_files, on_emr):
        _run(*cloud, "spark_jobs", "sample_input", "--source", str(BANK), *spec, "--date", day)
    day_uri = f"{DEFAULT_STORAGE_ROOT}/incoming/bank-marketing/ds={two_files}"
    copy = f"from spark_jobs import storage as s; d = {day_uri!r}; "
    _run(*cloud[:-1], "-c", copy + "s.write_bytes(d + '/more.csv', s.read_bytes(d + '/records.csv'))")
    conf = {"date": two_files, "target_rows_per_shard": 2000}
    sharded = _run("local_cloud.run", "batch_scoring", *where, "--conf", json.dumps(conf))
    assert "of 4,000 record(s) scored" in sharded and "in 2 pod(s)" in sharded, sharded[-2000:]
    conf = {"date": on_emr, "engine": "emr"}
    emr = _run("local_cloud.run", "batch_scoring", *where, "--conf", json.dumps(conf))
    assert "of 2,000 record(s) scored" in emr and "in one Spark step, spark engine" in emr, emr[-2000:]
    shown = _run(*cloud, "spark_jobs", "registry", "show", *spec, "--report-copy", str(tmp_path / "reports"))
    assert f"report:   s3://{BUCKET}/{PREFIX}/models/bank-marketing/versions/" in shown
    assert "<html" in next((tmp_path / "reports" / "bank-marketing").glob("*/index.html")).read_text().lower()

    kept = json.loads((home / "cloud-state" / "s3" / "index.json").read_text())[BUCKET]
    assert f"data/bank/{BANK.name}" in kept  # make run put the input there
    # Spark wrote the model through S3A on the step (part files), the pod wrote the scores.
    assert any("/spark_model/" in key and "/part-" in key for key in kept)
    for day in (date, two_files, on_emr):
        assert f"{PREFIX}/scores/bank-marketing/ds={day}/_summary.json" in kept
    assert not [key for key in kept if "/_shards/" in key]  # the commit removed the shards' folders
    # Every location the runs were given was in S3: no local storage folder was made.
    assert not (home / "storage").exists() and not (ROOT / "ml-scaling-storage").exists()
