"""Airflow as users run it: the real scheduler, DAG processor, triggerer and API server
(`airflow standalone`, as `make airflow` starts it) on loopback with the emulator.

A trigger through the REST API with a run configuration (what the UI's trigger form sends), the
scheduler creating the nightly run by itself, and batch scoring following it through the
champion Asset; and everything stopped at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest
from scaling_platform.lambda_release import DEFAULT_FUNCTION, FunctionSettings, release_model

from local_cloud.airflow_offline import LAMBDA_ROLE, airflow_env, migrate
from local_cloud.process import running_emulator
from local_cloud.server import client, role_arn
from local_cloud.standalone import USER, running_airflow, standalone_env
from spark_jobs import sample_input, storage
from spark_jobs.partitions import output_uri
from tests.conftest import BANK, bank_records, free_port
from tests.e2e.conftest import TRAINED_VERSION, copy_of

pytestmark = pytest.mark.slow
MODEL = "bank-marketing"


class Api:
    """The Airflow REST API (v2) as the UI calls it: a bearer token from the login."""

    def __init__(self, url: str, password: str):
        self.url = url
        token = self.call("POST", "/auth/token", {"username": USER, "password": password}, auth=False)
        self.token = token["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if auth else {}),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("GET", f"/api/v2/dags/{dag_id}")
                return
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after")["dag_runs"]

    def wait_for_run(self, dag_id: str, run_type: str | None = None, timeout: float = 600) -> dict:
        """The first run of `dag_id` (of `run_type`) to end; fails on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in self.runs(dag_id):
                if (run_type is None or run["run_type"] == run_type) and run["state"] in (
                    "success",
                    "failed",
                ):
                    return run
            time.sleep(3)
        raise AssertionError(
            f"no {run_type or ''} run of {dag_id} ended in {timeout:.0f} s: {self.runs(dag_id)}"
        )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id)}/taskInstances"
        return {t["task_id"]: t["state"] for t in self.call("GET", path)["task_instances"]}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, trained_storage, bank_spec):
    work = tmp_path_factory.mktemp("services")
    root = copy_of(trained_storage, work)
    # The nightly run the scheduler creates is for the latest 02:00 UTC; its scoring reads that day.
    now = dt.datetime.now(dt.UTC)
    for day in (now.date(), now.date() - dt.timedelta(days=1)):
        sample_input.cut(str(BANK), bank_spec, str(root), day.isoformat(), 300, "csv")
    home = work / "home"
    home.mkdir()
    port = free_port()
    with running_emulator(work, buckets=["logs"], roles=[LAMBDA_ROLE]) as endpoint:
        settings = FunctionSettings(name=DEFAULT_FUNCTION, role_arn=role_arn(LAMBDA_ROLE))
        release_model(client(endpoint, "lambda"), settings, str(root), MODEL, TRAINED_VERSION)
        env = standalone_env(airflow_env(home, endpoint, root, BANK, "logs"), port)
        migrate(env)
        with running_airflow(env, home, port) as running:
            api = Api(running.url, running.password)
            for dag_id in ("spot_predictions", "nightly_training", "batch_scoring"):
                api.wait_for_dag(dag_id)
            yield api, root
        pgid = running.process.pid
    # Everything it started is gone, and nothing listens on its port any more.
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_the_ui_is_served_and_each_dag_has_its_trigger_form(airflow):
    api, _ = airflow
    with urllib.request.urlopen(api.url + "/", timeout=30) as response:
        assert response.status == 200 and "<html" in response.read().decode().lower()
    for dag_id, param in (
        ("spot_predictions", "records"),
        ("nightly_training", "min_roc_auc"),
        ("batch_scoring", "date"),
    ):
        details = api.call("GET", f"/api/v2/dags/{dag_id}/details")
        assert param in details["params"], dag_id  # what the trigger form is built from


def test_a_trigger_with_a_run_configuration_runs_like_the_ui_form(airflow):
    api, root = airflow
    api.call("PATCH", "/api/v2/dags/spot_predictions", {"is_paused": False})
    records = bank_records(3, start=40)
    run = api.call(
        "POST", "/api/v2/dags/spot_predictions/dagRuns", {"logical_date": None, "conf": {"records": records}}
    )
    assert run["conf"] == {"records": records}
    ended = api.wait_for_run("spot_predictions", timeout=300)
    assert ended["dag_run_id"] == run["dag_run_id"] and ended["state"] == "success"
    responses = list((root / "predictions" / "spot").glob("*/response.json"))
    assert [json.loads(r.read_text())["count"] for r in responses] == [3]


def test_a_trigger_with_an_invalid_run_configuration_is_refused(airflow):
    api, _ = airflow
    before = len(api.runs("spot_predictions"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        api.call(
            "POST", "/api/v2/dags/spot_predictions/dagRuns", {"logical_date": None, "conf": {"records": []}}
        )
    assert refused.value.code == 400
    detail = refused.value.read().decode()
    assert "records" in detail and "Invalid input for param" in detail, detail
    assert len(api.runs("spot_predictions")) == before


def test_the_scheduler_runs_the_nightly_training_and_scoring_follows_it(airflow):
    api, root = airflow
    assert api.runs("nightly_training") == []
    api.call("PATCH", "/api/v2/dags/batch_scoring", {"is_paused": False})
    api.call("PATCH", "/api/v2/dags/nightly_training", {"is_paused": False})

    nightly = api.wait_for_run("nightly_training", run_type="scheduled", timeout=900)
    states = api.task_states("nightly_training", nightly["dag_run_id"])
    assert nightly["state"] == "success", states
    # bank.csv misses the default gate: the champion is kept, and published as tonight's.
    assert states["publish_champion"] == "success" and states["release_to_lambda"] == "skipped"

    scoring = api.wait_for_run("batch_scoring", run_type="asset_triggered", timeout=600)
    scored = api.task_states("batch_scoring", scoring["dag_run_id"])
    assert scoring["state"] == "success", scored
    night = nightly["logical_date"][:10]
    summary = json.loads(storage.read_bytes(f"{output_uri(str(root), MODEL, night)}/_summary.json"))
    assert summary["model_version"] == TRAINED_VERSION and summary["rows_scored"] == 300
    assert summary["run_id"] == scoring["dag_run_id"]
