"""`airflow dags test batch_scoring` offline: the provider's KubernetesPodOperator, the emulator's
pod API (schema-validated pod, its command run as a local process), the real scoring job and a
real trained champion."""

from __future__ import annotations

import json
import threading
import time

import pytest

from local_cloud.airflow.offline import airflow_env, dags_test, migrate
from local_cloud.process import running_emulator
from spark_jobs import storage
from spark_jobs.data import sample_input
from spark_jobs.data.partitions import input_uri, output_uri
from spark_jobs.registry.store import SPARK_MODEL, Registry
from tests.conftest import BANK
from tests.e2e.conftest import EMR_TASKS, TRAINED_VERSION, copy_of

pytestmark = [pytest.mark.spark, pytest.mark.emulator, pytest.mark.airflow]
DAG_ID = "batch_scoring"
MODEL = "bank-marketing"
TASKS = ("plan", "wait_for_input[0]", "engine", "shard", "pod_arguments", "score[0]", "scored", "commit[0]")


@pytest.fixture(scope="module")
def offline(tmp_path_factory, trained_storage, bank_spec):
    work = tmp_path_factory.mktemp("batch")
    root = copy_of(trained_storage, work)
    # A local-folder storage root: only host processes see it (a container would not).
    with running_emulator(work, buckets=["logs"], pod_runtime="process") as endpoint:
        env = airflow_env(work / "home", endpoint, root, BANK, "logs")
        migrate(env)
        yield env, root, work


def _pod_requests(work, method):
    journal = work / "kubernetes.jsonl"
    lines = journal.read_text().splitlines() if journal.exists() else []  # no request yet
    return [r for r in map(json.loads, lines) if r["method"] == method and r.get("pod")]


def _journal(work) -> list[dict]:
    journal = work / "kubernetes.jsonl"
    return [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []


def _rbac_asks(requests: list[dict]) -> set[tuple[str, str]]:
    """(verb, resource) of each request as the API server's authorizer sees it; a request outside
    any namespace as its resource prefixed with "cluster:". Discovery (/version, /api) is open to
    every client and left out."""
    verbs = {"POST": "create", "PATCH": "patch", "DELETE": "delete", "PUT": "update"}
    asks = set()
    for request in requests:
        parts = request["path"].strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 5:
            resource, named = "/".join(parts[4:5] + parts[6:7]), len(parts) >= 6
        elif parts[:2] == ["api", "v1"] and len(parts) >= 3:
            resource, named = "cluster:" + parts[2], len(parts) >= 4
        else:
            continue
        asks.add((verbs.get(request["method"], "get" if named else "list"), resource))
    return asks


def _assert_the_manifests_role_allows(asks: set[tuple[str, str]]) -> None:
    """What the operator asked of the API is what k8s/scoring.yaml's Role grants the worker."""
    import yaml

    from local_cloud.process import MANIFESTS

    (role,) = [d for p in MANIFESTS for d in yaml.safe_load_all(p.read_text()) if d["kind"] == "Role"]
    granted = {(v, r) for rule in role["rules"] for v in rule["verbs"] for r in rule["resources"]}
    assert asks and asks <= granted, f"the Role does not grant {sorted(asks - granted)}"


def test_scores_a_days_partition_through_the_pod_operator_as_spark_would(offline, spark, bank_spec):
    from pyspark.ml import PipelineModel
    from pyspark.sql import functions as F

    from spark_jobs.training.features import with_positive_probability

    env, root, work = offline
    sample_input.cut(str(BANK), bank_spec, str(root), "2026-11-20", 500, "csv")
    before = len(_journal(work))
    code, output, states = dags_test(env, DAG_ID, {}, "2026-11-20")

    assert code == 0, output[-4000:]
    assert states == dict.fromkeys(TASKS, "success") | dict.fromkeys(EMR_TASKS, "skipped")
    # The job's own output reached the task log through the followed pod log.
    assert "[base]" in output and "spark_jobs.scoring.score scoring shard 0 of 1" in output
    assert "records.csv: 500 row(s) read, 0 rejected, 500 scored" in output
    assert "shard 0 of 1: 500 row(s) read, 0 rejected, 500 scored in " in output  # the pod's totals
    summary = json.loads(storage.read_bytes(f"{output_uri(str(root), MODEL, '2026-11-20')}/_summary.json"))
    assert (summary["rows_in"], summary["rows_scored"]) == (500, 500)
    assert summary["model_version"] == TRAINED_VERSION
    assert summary["model_loads"] >= 1 and summary["run_id"].startswith("manual__")
    # One pod, created once (it passed the schemas) and deleted at the end.
    assert len(_pod_requests(work, "POST")) == 1 and len(_pod_requests(work, "DELETE")) == 1
    # ... in the manifests' namespace, asking only what their Role grants there.
    run = _journal(work)[before:]
    assert {r["namespace"] for r in run if r.get("pod")} == {"ml-scaling"}
    _assert_the_manifests_role_allows(_rbac_asks(run))

    # The scores are the Spark model's, the one training saved.
    scored = spark.read.parquet(storage.spark_uri(summary["output"]))
    registry = Registry(str(root), MODEL)
    saved = storage.join(registry.version_uri(TRAINED_VERSION), SPARK_MODEL)
    model = PipelineModel.load(storage.spark_uri(saved))
    ours = scored.withColumnRenamed("probability", "scored").drop("prediction")
    expected = with_positive_probability(model.transform(ours))
    diff = expected.select(F.max(F.abs(F.col("p_positive") - F.col("scored")))).first()[0]
    assert diff < 1e-9
    assert scored.select("record_id").distinct().count() == 500


def test_an_unknown_model_version_fails_the_plan_before_any_pod(offline, bank_spec):
    env, root, work = offline
    sample_input.cut(str(BANK), bank_spec, str(root), "2026-11-21", 50, "csv")
    deletes_before = len(_pod_requests(work, "DELETE"))
    creates_before = len(_pod_requests(work, "POST"))

    code, output, states = dags_test(env, DAG_ID, {"model_version": "no-such-version"}, "2026-11-21")

    assert code != 0
    # The version is fixed before any pod: a missing one fails the shard plan, with no pod.
    assert states["shard"] == "failed" and states["pod_arguments"] == "upstream_failed"
    assert states["commit"] == "upstream_failed"  # not retried, nothing to commit
    assert "error: no complete version 'no-such-version'" in output  # the job's stderr, in the task log
    # The project's failure notification ran, once, with the run's details.
    (alert, *_) = [line for line in output.splitlines() if "task failed: {" in line]
    assert '"task_id": "shard"' in alert and '"dag_id": "batch_scoring"' in alert
    assert len(_pod_requests(work, "POST")) == creates_before
    assert len(_pod_requests(work, "DELETE")) == deletes_before
    assert not storage.exists(output_uri(str(root), MODEL, "2026-11-21"))


def test_a_pod_whose_job_refuses_its_input_fails_once_shows_its_logs_and_leaves_no_pod(offline, bank_spec):
    env, root, work = offline
    sample_input.cut(str(BANK), bank_spec, str(root), "2026-11-25", 300, "csv")
    records = f"{input_uri(str(root), MODEL, '2026-11-25')}/records.csv"
    # Bytes that are not UTF-8 deep in the file: past what the plan reads, found by the pod.
    *rows, last = storage.read_bytes(records).rstrip(b"\n").split(b"\n")
    cells = last.split(b";")
    cells[2] += b"\xe4"  # a job title in Latin-1, in the last row
    storage.write_bytes(records, b"\n".join([*rows, b";".join(cells)]) + b"\n")
    creates_before, deletes_before = len(_pod_requests(work, "POST")), len(_pod_requests(work, "DELETE"))

    code, output, states = dags_test(env, DAG_ID, {}, "2026-11-25")

    assert code != 0
    assert states.get("score[0]") == "failed" and states.get("commit[0]") == "failed", (
        states,
        output[-4000:],
    )
    assert "records.csv is not utf-8 text" in output  # the job's stderr, in the task log
    assert "the job exited 3 (the input breaks the data contract)" in output, output[-6000:]
    assert "state='TERMINATED', reason='Error', exit_code=3" in output  # log_events_on_failure
    assert "shard 0 of 1 has no summary" in output  # the commit says why nothing was published
    (alert, *_) = [line for line in output.splitlines() if "task failed: {" in line]
    assert '"task_id": "score"' in alert and '"dag_id": "batch_scoring"' in alert
    # Not retried (one pod), and deleted. If it was, each try's failure says why.
    failures = [line[:1500] for line in output.splitlines() if "task failed: {" in line]
    assert len(_pod_requests(work, "POST")) == creates_before + 1, failures
    assert len(_pod_requests(work, "DELETE")) == deletes_before + 1
    assert not storage.exists(output_uri(str(root), MODEL, "2026-11-25"))


def test_a_day_in_shards_scores_side_by_side_and_a_lost_pod_is_retried_alone(offline, bank_spec):
    import kubernetes
    import pyarrow.parquet as pq

    env, root, work = offline
    date = "2026-11-26"
    sample_input.cut(str(BANK), bank_spec, str(root), date, 1200, "parquet")
    part = input_uri(str(root), MODEL, date)
    table = pq.read_table(f"{part}/records.parquet")
    pq.write_table(table, f"{part}/records.parquet", row_group_size=300)  # four row groups
    creates_before = len(_pod_requests(work, "POST"))
    # The cluster the DAG's connection names.
    config = json.loads(json.loads(env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])["extra"]["kube_config"])
    core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config_dict(config))
    lost: list[str] = []

    def lose_shard_2_once() -> None:
        # `kubectl delete pod` on shard 2's first pod as soon as it exists: a node lost under it.
        deadline = time.monotonic() + 600
        while not lost and time.monotonic() < deadline:
            for pod in core.list_namespaced_pod("ml-scaling").items:
                if '"index":2,' in " ".join(pod.spec.containers[0].args or []):
                    core.delete_namespaced_pod(pod.metadata.name, "ml-scaling", grace_period_seconds=0)
                    lost.append(pod.metadata.name)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=lose_shard_2_once, daemon=True)
    killer.start()
    conf = {"target_rows_per_shard": 300, "max_pods": 4}
    code, output, states = dags_test(env, DAG_ID, conf, date)
    killer.join(timeout=5)

    assert code == 0, output[-4000:]
    assert lost, "shard 2's pod was never seen"
    assert {k: v for k, v in states.items() if k.startswith("score[")} == {
        f"score[{i}]": "success" for i in range(4)
    }
    assert states["commit[0]"] == "success"
    # Four pods and one more for the lost shard's retry; the others ran once.
    assert len(_pod_requests(work, "POST")) == creates_before + 5
    summary = json.loads(storage.read_bytes(f"{output_uri(str(root), MODEL, date)}/_summary.json"))
    assert summary["shards"] == 4 and (summary["rows_in"], summary["rows_scored"]) == (1200, 1200)
    scored = pq.read_table(output_uri(str(root), MODEL, date))
    assert sorted(scored.column("record_id").to_pylist()) == sorted(table.column("record_id").to_pylist())


@pytest.mark.parametrize(("policy", "state"), [("fail", "failed"), ("skip", "skipped")])
def test_a_missing_partition_fails_or_skips_as_the_param_says_without_a_pod(offline, policy, state):
    env, _, work = offline
    creates_before = len(_pod_requests(work, "POST"))
    conf = {"date": "2026-10-01", "if_input_missing": policy}

    code, output, states = dags_test(env, DAG_ID, conf, "2026-11-22" if policy == "fail" else "2026-11-23")

    assert (code == 0) == (policy == "skip"), output[-3000:]
    assert states["wait_for_input[0]"] == state
    assert states["commit[0]"] == ("failed" if policy == "fail" else "skipped")
    assert "no input for 2026-10-01" in output
    assert len(_pod_requests(work, "POST")) == creates_before


def test_an_invalid_date_param_is_refused(offline):
    env, _, work = offline
    code, output, states = dags_test(env, DAG_ID, {"date": "20/11/2026"}, "2026-11-24")
    assert code != 0 and "Invalid input for param date" in output
    assert states == {}


def test_the_emr_engine_scores_the_same_day_as_the_pods_and_leaves_no_cluster(offline, bank_spec):
    import boto3
    import pyarrow.parquet as pq

    env, root, work = offline
    date = "2026-11-27"
    sample_input.cut(str(BANK), bank_spec, str(root), date, 400, "csv")
    out = output_uri(str(root), MODEL, date)
    assert dags_test(env, DAG_ID, {}, date)[0] == 0
    pods = {r["record_id"]: r["probability"] for r in pq.read_table(out).to_pylist()}

    code, output, states = dags_test(env, DAG_ID, {"engine": "emr"}, date)

    assert code == 0, output[-4000:]
    for task_id in ("emr_plan", "create_cluster", "wait_for_cluster", "add_steps", "wait_for_step[0]"):
        assert states[task_id] == "success", (task_id, states)
    assert states["emr_summaries"] == states["terminate_cluster"] == "success"
    assert states["shard"] == "skipped" and states["commit"] == "skipped"  # not the pods' road
    summary = json.loads(storage.read_bytes(f"{out}/_summary.json"))
    assert summary["engine"] == "spark" and summary["rows_scored"] == 400
    assert summary["run_id"].startswith("manual__")
    emr = {r["record_id"]: r["probability"] for r in pq.read_table(out).to_pylist()}
    assert emr.keys() == pods.keys()
    assert max(abs(emr[k] - pods[k]) for k in pods) < 1e-9
    # The cluster this run created is gone.
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])  # as the worker
    client = boto3.client(
        "emr",
        endpoint_url=aws["extra"]["endpoint_url"],
        region_name=aws["extra"]["region_name"],
        aws_access_key_id=aws["login"],
        aws_secret_access_key=aws["password"],
    )
    live = client.list_clusters(ClusterStates=["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"])["Clusters"]
    assert not [c for c in live if c["Name"].startswith("batch-scoring-")]
