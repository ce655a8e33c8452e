"""`airflow dags test nightly_training` offline: the real EMR operators against the emulator."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from pathlib import Path

import pytest
from scaling_platform.emr import ClusterSettings, job_flow_overrides

from local_cloud.airflow.offline import LAMBDA_ROLE, airflow_env, dags_test, migrate, ship_lambda
from local_cloud.aws.validation import read_journal
from local_cloud.process import running_emulator
from local_cloud.server import client
from spark_jobs.registry.store import Registry
from tests.conftest import BANK, BANK_FUNCTION, in_network

pytestmark = [pytest.mark.spark, pytest.mark.emulator, pytest.mark.airflow]
DAG_ID = "nightly_training"
ALL_TASKS = {
    "resolve",
    "publish_champion",
    "validate_input",
    "ship_code",
    "cluster_request",
    "create_cluster",
    "wait_for_cluster",
    "step_request",
    "add_training_step",
    "wait_for_training",
    "promote",
    "terminate_cluster",
    "release_to_lambda",
}


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    work = tmp_path_factory.mktemp("airflow")
    with running_emulator(work, buckets=["logs"], roles=[LAMBDA_ROLE]) as endpoint:
        ship_lambda(work / "storage", endpoint)
        env = airflow_env(work / "home", endpoint, work / "storage", BANK, "logs")
        migrate(env)
        yield env, endpoint, work


def _links(database: Path, task_id: str) -> dict[str, str]:
    """The task's extra links (link class -> URL) as Airflow keeps them: XComs `_link_<class>`."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute("SELECT key, value FROM xcom WHERE dag_id = ? AND task_id = ?", (DAG_ID, task_id))
        found = rows.fetchall()
    return {key.removeprefix("_link_"): json.loads(value) for key, value in found if key.startswith("_link_")}


def _emr(endpoint):
    return client(endpoint, "emr")


def _clusters(endpoint):
    return _emr(endpoint).list_clusters()["Clusters"]


def _step_states(endpoint) -> list[str]:
    emr = _emr(endpoint)
    return [
        s["Status"]["State"] for c in _clusters(endpoint) for s in emr.list_steps(ClusterId=c["Id"])["Steps"]
    ]


def test_nightly_run_trains_promotes_and_terminates_its_cluster(offline):
    env, endpoint, work = offline
    # The job's own log lines (its stdout), as the wait shows them: when the first one is in the
    # task log, the step is still running.
    live: list[tuple[str, list[str]]] = []

    def watch(line: str) -> None:
        if "[step stdout]" in line and "spark_jobs.training.train" in line and not live:
            live.append((line, _step_states(endpoint)))

    code, output, states = dags_test(env, DAG_ID, {"min_roc_auc": 0.8}, "2026-11-20", on_line=watch)

    assert code == 0, output[-4000:]
    assert states == dict.fromkeys(ALL_TASKS, "success")
    [(first_line, steps_then)] = live
    assert steps_then == ["RUNNING"], (first_line, steps_then)
    # Each of the step's lines shown once, not again at each poll (compared without the task
    # log's own timestamp and prefix).
    shown = [line[line.index("[step ") :].strip() for line in output.splitlines() if "[step std" in line]
    assert shown.count(first_line[first_line.index("[step ") :].strip()) == 1
    # Once it has ended, the tails of its Spark driver's container log (the job's output on EMR).
    assert "The step's Spark driver: application application_" in output
    driver = output[output.index("The step's Spark driver: ") :]
    assert "/containers/application_" in driver and "spark_jobs.training.train" in driver
    registry = Registry(str(work / "storage"), "bank-marketing")
    assert registry.champion()["version"] == "nightly-20261120"
    assert [c["Status"]["State"] for c in _clusters(endpoint)] == ["TERMINATED"]
    # The step wait's links, as Airflow stored them when the task ended (its page shows them).
    (cluster_id,) = [c["Id"] for c in _clusters(endpoint)]
    dns = _emr(endpoint).describe_cluster(ClusterId=cluster_id)["Cluster"]["MasterPublicDnsName"]
    links = _links(work / "home" / "airflow.db", "wait_for_training")
    assert f"#/clusterDetails/{cluster_id}" in links["EmrClusterLink"]
    assert links["EmrStepLogsLink"].startswith(
        f"https://console.aws.amazon.com/s3/buckets/logs?region=us-east-1&prefix=emr/{cluster_id}/steps/s-"
    )
    assert re.fullmatch(
        rf"http://{re.escape(dns)}:18080/history/application_\d+_0001/jobs/", links["SparkHistoryServerLink"]
    )
    # Every EMR request the provider's operators sent passed botocore's validation.
    requests = read_journal(work / "requests.jsonl")
    assert {"RunJobFlow", "AddJobFlowSteps", "DescribeStep", "TerminateJobFlows"} <= {
        r["operation"] for r in requests
    }
    assert [r for r in requests if r["error"]] == []
    # The promoted model is live on the spot-predictions function, pinned to its version.
    lam = client(endpoint, "lambda")
    live = lam.get_alias(FunctionName=BANK_FUNCTION, Name="live")["FunctionVersion"]
    config = lam.get_function_configuration(FunctionName=BANK_FUNCTION, Qualifier=live)
    assert config["Environment"]["Variables"]["ML_MODEL_VERSION"] == "nightly-20261120"
    answer = lam.invoke(FunctionName=BANK_FUNCTION, Qualifier="live", Payload=b'{"records": []}')
    assert answer["FunctionError"] == "Unhandled"  # a live function that checks its input

    # A re-run of the same night names the same version and does not train it twice.
    manifest = registry.manifest("nightly-20261120")
    code, output, states = dags_test(env, DAG_ID, {"min_roc_auc": 0.8}, "2026-11-20")
    assert code == 0, output[-4000:]
    assert registry.versions() == ["nightly-20261120"]
    assert registry.manifest("nightly-20261120") == manifest
    # ... nor publish a second Lambda version of the same model.
    assert lam.get_alias(FunctionName=BANK_FUNCTION, Name="live")["FunctionVersion"] == live


def test_a_failing_step_fails_the_run_terminates_the_cluster_and_keeps_the_champion(offline):
    env, endpoint, work = offline
    night = "20261121"
    registry = Registry(str(work / "storage"), "bank-marketing")
    champion_before = registry.champion()
    lines = BANK.read_text().splitlines(keepends=True)
    # Under the storage root: the offline deployment allows reading there (ml_allowed_prefixes).
    broken = work / "storage" / "inputs" / "broken.csv"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text(
        lines[0] + "".join(lines[1:100]) + lines[100].replace(";1;", ";one;", 1) + "".join(lines[101:])
    )
    env = env | {"AIRFLOW_VAR_ML_INPUT_URI": str(broken)}

    code, output, states = dags_test(env, DAG_ID, {}, f"{night[:4]}-{night[4:6]}-{night[6:]}")

    assert code != 0
    assert states["wait_for_training"] == "failed"
    # The step's own words reach the task log: which step, and why it failed.
    assert f"EMR step 'train bank-marketing nightly-{night}'" in output
    # The step wait is deferred to the triggerer (inline under `airflow dags test`).
    assert "Pausing task as DEFERRED" in output
    # stderr and stdout of the step and of its Spark driver, once: a failed step is not waited
    # for again by a retry. The job's own words are in the driver's (as on EMR).
    assert output.count("--- tail of s3://logs/emr/") == 4
    driver = output[output.index("/containers/application_") :]
    assert "value(s) are not an integer" in driver
    assert states["promote"] == "upstream_failed"
    assert states["release_to_lambda"] == "upstream_failed"
    assert states["publish_champion"] == "upstream_failed"  # no Asset event: batch scoring waits
    assert states["terminate_cluster"] == "success"
    assert all(c["Status"]["State"] == "TERMINATED" for c in _clusters(endpoint))
    assert registry.champion() == champion_before
    assert f"nightly-{night}" not in registry.versions()


def test_an_invalid_param_is_refused_before_any_cluster_exists(offline):
    env, endpoint, _ = offline
    before = len(_clusters(endpoint))
    code, output, states = dags_test(env, DAG_ID, {"min_roc_auc": 2}, "2026-11-22")
    assert code != 0
    assert "Invalid input for param min_roc_auc" in output
    assert states == {}
    assert len(_clusters(endpoint)) == before


def test_an_existing_cluster_is_used_and_left_running(offline):
    env, endpoint, work = offline
    emr = _emr(endpoint)
    cluster_id = emr.run_job_flow(
        **job_flow_overrides(
            ClusterSettings(name="shared", log_uri="s3://logs/emr/", **in_network()), dag_id="x", run_id="y"
        )
    )["JobFlowId"]
    before = len(_clusters(endpoint))
    # The champion an earlier test promoted, if this test runs after it, is published as tonight's.
    champion = Registry(str(work / "storage"), "bank-marketing").champion()

    code, output, states = dags_test(env, DAG_ID, {"existing_cluster_id": cluster_id}, "2026-11-23")

    assert code == 0, output[-4000:]
    # bank.csv misses the default gate (ROC AUC 0.88): no promotion, so no Lambda release.
    assert states == dict.fromkeys(ALL_TASKS, "success") | {
        "release_to_lambda": "skipped",
        "publish_champion": "success" if champion else "skipped",
    }
    assert "nightly-20261123 was not promoted: the function is unchanged" in output
    assert "Using the existing cluster" in output
    assert "was not created by this run: leaving it running" in output
    assert len(_clusters(endpoint)) == before
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "WAITING"
    steps = emr.list_steps(ClusterId=cluster_id)["Steps"]
    assert [(s["Name"], s["Status"]["State"]) for s in steps] == [
        ("train bank-marketing nightly-20261123", "COMPLETED")
    ]
    assert "nightly-20261123" in Registry(str(work / "storage"), "bank-marketing").versions()

    code, output, states = dags_test(env, DAG_ID, {"existing_cluster_id": "j-0000000000"}, "2026-11-24")
    assert code != 0
    assert "EMR cluster j-0000000000 not found" in output
    # Failed for good, not retried a minute later: a missing cluster stays missing.
    assert output.count("Using the existing cluster j-0000000000") == 1
    assert states["create_cluster"] == "failed"
    assert states["add_training_step"] == "upstream_failed"
    assert len(_clusters(endpoint)) == before
