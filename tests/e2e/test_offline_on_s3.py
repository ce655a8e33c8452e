"""`make run`'s road with its default storage root, the emulator's S3: the input is put in the
bucket, the EMR step writes the model through S3A, the next emulator (spot_predictions, then
batch_scoring's pod) reads what the last one wrote, and `make show` copies the report out."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from local_cloud.airflow_offline import DEFAULT_STORAGE_ROOT
from local_cloud.containers import describe, find_engine
from tests.conftest import BANK_FULL as BANK
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

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
    shown = _run(*cloud, "spark_jobs.registry", "show", *spec, "--report-copy", str(tmp_path / "reports"))
    assert f"report:   s3://{BUCKET}/{PREFIX}/models/bank-marketing/versions/" in shown
    assert "<html" in next((tmp_path / "reports" / "bank-marketing").glob("*/index.html")).read_text().lower()

    kept = json.loads((home / "cloud-state" / "s3" / "index.json").read_text())[BUCKET]
    assert f"data/bank/{BANK.name}" in kept  # make run put the input there
    # Spark wrote the model through S3A on the step (part files), the pod wrote the scores.
    assert any("/spark_model/" in key and "/part-" in key for key in kept)
    assert f"{PREFIX}/scores/bank-marketing/ds={date}/_summary.json" in kept
    # Every location the runs were given was in S3: no local storage folder was made.
    assert not (home / "storage").exists() and not (ROOT / "ml-scaling-storage").exists()
