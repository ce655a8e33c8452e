"""`python -m local_cloud.run` (what `make run`, `make score` and `make predict` run): a DAG run
through `airflow dags test` whose recorded times are the real ones."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from local_cloud.airflow.offline import AIRFLOW, airflow_env
from tests.conftest import BANK, ROOT

pytestmark = [pytest.mark.spark, pytest.mark.emulator, pytest.mark.airflow]


def test_a_runs_recorded_duration_is_how_long_it_ran(tmp_path):
    """`airflow dags test` records the logical date as the run's start: given only a date, a run
    made in the afternoon showed as lasting since midnight."""
    home = tmp_path / "home"
    conf = {"date": "2026-11-20", "if_input_missing": "skip"}
    before = dt.datetime.now(dt.UTC)
    command = [sys.executable, "-m", "local_cloud.run", "batch_scoring", "--conf", json.dumps(conf)]
    command += ["--home", str(home), "--storage-root", str(tmp_path / "storage")]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    after = dt.datetime.now(dt.UTC)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "skipped          commit[0]" in run.stdout, run.stdout[-2000:]

    env = airflow_env(home, "http://127.0.0.1:1", tmp_path / "storage", BANK, "logs")
    listed = subprocess.run(
        [AIRFLOW, "dags", "list-runs", "batch_scoring", "-o", "json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # (The CLI may print a warning about graphviz before its JSON.)
    [recorded] = json.loads(next(line for line in listed.stdout.splitlines() if line.startswith("[")))
    start, end = (dt.datetime.fromisoformat(recorded[k]) for k in ("start_date", "end_date"))
    assert before - dt.timedelta(seconds=5) <= start <= end <= after, recorded
