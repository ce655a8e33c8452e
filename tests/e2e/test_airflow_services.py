"""Airflow as users run it: the services `make airflow` starts (PostgreSQL, then api-server,
scheduler, DAG processor and triggerer on loopback with the emulator), used the way people use
them: the trigger forms in a real browser (Debian's chromium under Playwright), the REST API with a
run configuration, and the scheduler creating the nightly run by itself, with a CPU hog on every
core beside it, and batch scoring following it through the champion Asset. Everything is stopped
at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from scaling_platform.lambda_release import FunctionSettings, release_model

from local_cloud.airflow.offline import LAMBDA_ROLE
from local_cloud.airflow.standalone import Running, local_airflow
from local_cloud.server import client, role_arn
from spark_jobs import storage
from spark_jobs.data import sample_input
from spark_jobs.data.partitions import output_uri
from tests.conftest import BANK, BANK_FUNCTION, bank_records, free_port
from tests.e2e.airflow_ui import (
    Api,
    chromium,
    log_in,
    open_trigger_form,
    paste_into_editor,
    screenshot,
    trigger_button,
)
from tests.e2e.conftest import TRAINED_VERSION, copy_of

pytestmark = [pytest.mark.spark, pytest.mark.emulator, pytest.mark.airflow]
MODEL = "bank-marketing"
DAGS = ("spot_predictions", "nightly_training", "batch_scoring")
# The day the browser test scores from batch_scoring's form.
FORM_DATE = "2026-11-19"


@dataclass
class Services:
    api: Api
    root: Path
    home: Path
    running: Running
    before: set[int]  # this worker's processes before the services started (its Spark, say)

    def processes(self) -> list[psutil.Process]:
        """The processes the services started: the emulator, PostgreSQL and Airflow's."""
        return [p for p in psutil.Process().children(recursive=True) if p.pid not in self.before]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, trained_storage, bank_spec) -> Iterator[Services]:
    work = tmp_path_factory.mktemp("services")
    root = copy_of(trained_storage, work)
    # The nightly run the scheduler creates is for the latest 02:00 UTC; its scoring reads that day.
    now = dt.datetime.now(dt.UTC)
    for day in (now.date().isoformat(), (now.date() - dt.timedelta(days=1)).isoformat(), FORM_DATE):
        sample_input.cut(str(BANK), bank_spec, str(root), day, 300, "csv")
    home = work / "home"
    port = free_port()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with local_airflow(home, root, BANK, port, progress=lambda line: None) as running:
        settings = FunctionSettings(name=BANK_FUNCTION, role_arn=role_arn(LAMBDA_ROLE))
        release_model(client(running.endpoint, "lambda"), settings, str(root), MODEL, TRAINED_VERSION)
        api = Api(running.url, running.password)
        for dag_id in DAGS:
            api.wait_for_dag(dag_id)
        services = Services(api, root, home, running, before)
        started = services.processes()
        yield services
    # Everything it started is gone (the database too), and nothing listens on its port any more.
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


@pytest.fixture(scope="module")
def page(airflow):
    with chromium() as browser:
        yield log_in(browser, airflow.api.url, airflow.running.password)


def test_every_server_listens_on_loopback_only(airflow):
    """The log servers Airflow's scheduler and triggerer start bind every interface: none runs."""
    listening = {
        (c.laddr.ip, c.laddr.port, p.name())
        for p in airflow.processes()
        for c in _connections(p)
        if c.status == psutil.CONN_LISTEN
    }
    assert listening, "nothing listens"
    # A JVM's IPv6 socket shows its 127.0.0.1 as ::ffff:127.0.0.1, the same loopback address.
    assert {ip.removeprefix("::ffff:") for ip, _, _ in listening} == {"127.0.0.1"}, listening
    assert not {port for _, port, _ in listening} & {8793, 8794}, listening
    # PostgreSQL is reached on its unix socket only.
    assert "postgres" not in {name for _, _, name in listening}


def _connections(process: psutil.Process) -> list:
    with contextlib.suppress(psutil.Error):
        return process.net_connections(kind="inet")
    return []


def test_the_services_run_on_postgresql_with_the_deployment_settings_in_it(airflow):
    import psycopg

    with psycopg.connect(host=str(airflow.home / "postgres"), user="postgres", dbname="airflow") as conn:
        dags = {row[0] for row in conn.execute("SELECT dag_id FROM dag")}
        variables = dict(conn.execute("SELECT key, val FROM variable").fetchall())
    assert set(DAGS) <= dags
    # Admin -> Variables and Connections show what the DAGs use, and a person can edit it there.
    shown = {v["key"]: v["value"] for v in airflow.api.call("GET", "/api/v2/variables")["variables"]}
    assert shown["ml_storage_root"] == str(airflow.root) and shown.keys() == variables.keys()
    connections = {c["connection_id"] for c in airflow.api.call("GET", "/api/v2/connections")["connections"]}
    assert {"aws_default", "kubernetes_default"} <= connections
    scheduler = airflow.running.processes["scheduler"]
    environ = psutil.Process(scheduler.pid).environ()
    assert not [k for k in environ if k.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_"))]
    assert environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")


@pytest.mark.browser
@pytest.mark.parametrize("dag_id", DAGS)
def test_each_trigger_form_opens_ready_to_trigger_with_its_defaults(airflow, page, dag_id):
    dialog = open_trigger_form(page, airflow.api.url, dag_id)
    screenshot(page, f"form-{dag_id}")
    assert dialog.get_by_text("This field is required").count() == 0
    assert trigger_button(dialog).is_enabled()
    page.keyboard.press("Escape")


@pytest.mark.browser
def test_invalid_values_are_refused_before_a_run_exists(airflow, page):
    url = airflow.api.url
    # A JSON syntax error in the records: the form says so and will not trigger.
    dialog = open_trigger_form(page, url, "spot_predictions")
    paste_into_editor(page, dialog.locator("#element_records"), json.dumps(bank_records(2))[:-1])
    dialog.get_by_text("SyntaxError").wait_for()
    assert not trigger_button(dialog).is_enabled()
    screenshot(page, "refused-records-syntax-error")
    page.keyboard.press("Escape")

    # A cluster id that breaks the Param's pattern: the API refuses it, the form shows the failure.
    dialog = open_trigger_form(page, url, "nightly_training")
    dialog.get_by_text("Unpause nightly_training on trigger").click()  # the scheduler test unpauses it
    dialog.locator("#element_existing_cluster_id").fill("my-cluster")
    trigger_button(dialog).click()
    page.get_by_text("Failed to Trigger Dag").wait_for()
    screenshot(page, "refused-cluster-id")
    page.keyboard.press("Escape")
    assert airflow.api.runs("nightly_training") == []
    assert airflow.api.is_paused("nightly_training")


@pytest.mark.browser
def test_spot_predictions_from_the_form_with_an_edited_record(airflow, page):
    api = airflow.api
    assert api.is_paused("spot_predictions")
    records = bank_records(2, start=10)
    records[0]["balance"] = 250000
    dialog = open_trigger_form(page, api.url, "spot_predictions")
    paste_into_editor(page, dialog.locator("#element_records"), json.dumps(records, indent=2))
    screenshot(page, "form-spot-predictions-edited")
    trigger_button(dialog).click()
    page.wait_for_url("**/dags/spot_predictions/runs/**")
    run_id = page.url.split("/runs/")[1].split("/")[0].split("?")[0]

    run = api.wait_for_run("spot_predictions", run_id=urllib.parse.unquote(run_id), timeout=300)
    assert run["state"] == "success", api.task_states("spot_predictions", run["dag_run_id"])
    assert run["conf"]["records"] == records
    # "Unpause on trigger" worked: on SQLite its PATCH failed with a 500 and the run sat queued.
    assert not api.is_paused("spot_predictions")
    # The predictions end the task log as a table, where a person looks first.
    log = api.task_log("spot_predictions", run["dag_run_id"], "predict")
    table = log[log.index(next(line for line in log if "prediction(s), model" in line)) :]
    assert table[0] == f"2 prediction(s), model {MODEL} {TRAINED_VERSION}:"
    assert [row.split()[0] for row in table[2:4]] == ["0", "1"]
    page.goto(f"{api.url}/dags/spot_predictions/runs/{run_id}/tasks/predict")
    page.get_by_text("prediction(s), model").first.wait_for()
    screenshot(page, "result-spot-predictions-log")


@pytest.mark.browser
def test_batch_scoring_from_the_form_with_a_date(airflow, page):
    api = airflow.api
    dialog = open_trigger_form(page, api.url, "batch_scoring")
    dialog.locator("#element_date").fill(FORM_DATE)
    screenshot(page, "form-batch-scoring-date")
    trigger_button(dialog).click()
    page.wait_for_url("**/dags/batch_scoring/runs/**")
    run_id = urllib.parse.unquote(page.url.split("/runs/")[1].split("/")[0].split("?")[0])

    run = api.wait_for_run("batch_scoring", run_id=run_id, timeout=600)
    assert run["state"] == "success", api.task_states("batch_scoring", run_id)
    assert run["conf"]["date"] == FORM_DATE
    summary = json.loads(
        storage.read_bytes(f"{output_uri(str(airflow.root), MODEL, FORM_DATE)}/_summary.json")
    )
    assert (summary["run_id"], summary["rows_scored"]) == (run_id, 300)
    screenshot(page, "result-batch-scoring")


def test_a_trigger_with_a_run_configuration_runs_like_the_ui_form(airflow):
    api, root = airflow.api, airflow.root
    records = bank_records(3, start=40)
    run = api.call(
        "POST", "/api/v2/dags/spot_predictions/dagRuns", {"logical_date": None, "conf": {"records": records}}
    )
    assert run["conf"] == {"records": records}
    api.call("PATCH", "/api/v2/dags/spot_predictions", {"is_paused": False})
    ended = api.wait_for_run("spot_predictions", run_id=run["dag_run_id"], timeout=300)
    assert ended["state"] == "success"
    folder = run["dag_run_id"].translate({ord(c): "_" for c in ":+"})
    response = json.loads((root / "predictions" / "spot" / folder / "response.json").read_text())
    assert response["count"] == 3


def test_a_trigger_with_an_invalid_run_configuration_is_refused(airflow):
    api = airflow.api
    before = len(api.runs("spot_predictions"))
    for conf in ({"records": []}, {"records": None}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            api.call("POST", "/api/v2/dags/spot_predictions/dagRuns", {"logical_date": None, "conf": conf})
        assert refused.value.code == 400
        detail = refused.value.read().decode()
        assert "records" in detail and "Invalid input for param" in detail, detail
    with pytest.raises(urllib.error.HTTPError) as refused:
        api.call(
            "POST",
            "/api/v2/dags/batch_scoring/dagRuns",
            {"logical_date": None, "conf": {"date": "2026-13-45"}},
        )
    assert refused.value.code == 400 and "is not a 'date'" in refused.value.read().decode()
    assert len(api.runs("spot_predictions")) == before


@contextlib.contextmanager
def cpu_hog() -> Iterator[None]:
    """A busy loop on every core, as on a loaded machine."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_the_scheduler_runs_the_nightly_training_under_load_and_scoring_follows_it(airflow):
    api, root = airflow.api, airflow.root
    assert api.runs("nightly_training") == []
    with cpu_hog():
        api.call("PATCH", "/api/v2/dags/batch_scoring", {"is_paused": False})
        api.call("PATCH", "/api/v2/dags/nightly_training", {"is_paused": False})

        nightly = api.wait_for_run("nightly_training", run_type="scheduled", timeout=1500)
        states = api.task_states("nightly_training", nightly["dag_run_id"])
        assert nightly["state"] == "success", states
        # Every task succeeded on its first try: no sensor lost a try to a stale executor event.
        path = f"/api/v2/dags/nightly_training/dagRuns/{urllib.parse.quote(nightly['dag_run_id'])}"
        tasks = api.call("GET", f"{path}/taskInstances")["task_instances"]
        assert [t["task_id"] for t in tasks if t["try_number"] > 1] == []
        # bank.csv misses the default gate: the champion is kept, and published as tonight's.
        assert states["publish_champion"] == "success" and states["release_to_lambda"] == "skipped"
        # The step wait's page: the provider's links and ours, as the API server renders them.
        links = api.call("GET", f"{path}/taskInstances/wait_for_training/links")["extra_links"]
        assert {"EMR Cluster", "EMR Cluster Logs", "EMR Step Logs", "Spark History Server"} <= set(links)
        assert (
            "/steps/s-" in links["EMR Step Logs"]
            and ":18080/history/application_" in links["Spark History Server"]
        )
    # The load was for the nightly's sensors; the run the champion Asset starts needs none.
    scoring = api.wait_for_run("batch_scoring", run_type="asset_triggered", timeout=900)
    scored = api.task_states("batch_scoring", scoring["dag_run_id"])
    assert scoring["state"] == "success", scored
    night = nightly["logical_date"][:10]
    summary = json.loads(storage.read_bytes(f"{output_uri(str(root), MODEL, night)}/_summary.json"))
    assert summary["model_version"] == TRAINED_VERSION and summary["rows_scored"] == 300
    assert summary["run_id"] == scoring["dag_run_id"]
