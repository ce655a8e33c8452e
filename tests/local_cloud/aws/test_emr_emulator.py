"""The emulator answers the EMR API through boto3 and really runs spark-submit steps."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from scaling_platform.emr import (
    ClusterSettings,
    containers_prefix,
    driver_container,
    job_flow_overrides,
    spark_submit_step,
    submitted_application,
)
from scaling_platform.emr_operators import existing_step_ids

from local_cloud.aws.emr.steps import StepRunner, local_spark_submit
from local_cloud.server import client
from spark_jobs import class_archive
from spark_jobs.session import LOCAL_JVM_OPTIONS, QUICK_JIT_OPTIONS, s3a_settings
from spark_jobs.shipping.package import ship
from tests.conftest import BANK, in_network, train_args


def test_cluster_only_options_are_dropped_for_local_runs():
    step = spark_submit_step(
        name="s",
        shipped={"entrypoint_uri": "/c/submit.py", "code_uri": "/c/code.zip", "environment_uri": "s3://b/e"},
        job_args=["train", "--seed", "1"],
        conf={"spark.sql.shuffle.partitions": "4"},
    )
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    command = local_spark_submit(step["HadoopJarStep"]["Args"], "local[2]", env)
    assert command[0].endswith("/spark-submit")
    # First what serves s3:// (EMRFS on EMR, S3A on the emulator's endpoint here), then the step's.
    s3 = [arg for key, value in s3a_settings(env).items() for arg in ("--conf", f"{key}={value}")]
    assert "spark.hadoop.fs.s3a.endpoint=http://127.0.0.1:1" in s3
    assert command[1:] == [
        "--master",
        "local[2]",
        *s3,
        "--conf",
        "spark.sql.shuffle.partitions=4",
        "--py-files",
        "/c/code.zip",
        "/c/submit.py",
        "train",
        "--seed",
        "1",
    ]
    with pytest.raises(ValueError, match="spark-submit steps only"):
        local_spark_submit(["hadoop-streaming", "x"], "local[2]")


def test_a_steps_jvm_is_started_for_a_short_local_job_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv("SPARK_SUBMIT_OPTS", raising=False)
    monkeypatch.delenv("SPARK_LOCAL_JIT", raising=False)
    options = StepRunner(lambda *_: None)._env["SPARK_SUBMIT_OPTS"]
    assert options.startswith(f"{LOCAL_JVM_OPTIONS} {QUICK_JIT_OPTIONS}")  # a step runs a sample
    # ... with the classes of the machine's archive, when `make setup` has made it.
    archive = class_archive.path()
    assert ("-XX:SharedArchiveFile=" in options) == bool(archive and archive.exists())
    monkeypatch.setenv("SPARK_LOCAL_JIT", "full")  # a large input offline
    assert QUICK_JIT_OPTIONS not in StepRunner(lambda *_: None)._env["SPARK_SUBMIT_OPTS"]
    monkeypatch.setenv("SPARK_SUBMIT_OPTS", "-Xmx1g")
    assert StepRunner(lambda *_: None)._env["SPARK_SUBMIT_OPTS"] == "-Xmx1g"


def test_a_step_whose_archive_is_missing_fails_as_on_the_cluster(tmp_path):
    args = ["spark-submit", "--archives", f"{tmp_path}/env.tar.gz#environment", "/c/submit.py"]
    with pytest.raises(ValueError, match="env.tar.gz does not exist"):
        local_spark_submit(args, "local[2]")
    (tmp_path / "env.tar.gz").write_bytes(b"")
    assert local_spark_submit(args, "local[2]")[-1] == "/c/submit.py"


def _emr(endpoint):
    return client(endpoint, "emr")


def _wait_for_step(emr, cluster_id, step_id, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]
        if state in ("COMPLETED", "FAILED", "CANCELLED"):
            return state
        time.sleep(0.5)
    raise AssertionError(f"step {step_id} still {state} after {timeout}s")


def _log(endpoint, cluster_id, step_id, name):
    s3 = client(endpoint, "s3")
    body = s3.get_object(Bucket="logs", Key=f"emr/{cluster_id}/steps/{step_id}/{name}.gz")["Body"].read()
    return gzip.decompress(body).decode()


@pytest.mark.spark
@pytest.mark.emulator
def test_steps_run_with_local_spark_and_leave_their_logs_where_log_uri_says(emulator, tmp_path):
    emr = _emr(emulator)
    code = ship(str(tmp_path / "root"))
    cluster_id = emr.run_job_flow(
        **job_flow_overrides(
            ClusterSettings(name="test", log_uri="s3://logs/emr/", **in_network()), dag_id="t", run_id="r"
        )
    )["JobFlowId"]

    def train_step(input_path):
        return spark_submit_step(
            name=f"train {input_path.name}",
            shipped=code,
            job_args=["train", *train_args(input_path, tmp_path / "root", "--version", input_path.stem)],
        )

    good, bad = emr.add_job_flow_steps(
        JobFlowId=cluster_id, Steps=[train_step(BANK), train_step(tmp_path / "missing.csv")]
    )["StepIds"]

    assert _wait_for_step(emr, cluster_id, good) == "COMPLETED"
    assert (tmp_path / "root" / "models" / "bank-marketing" / "versions" / "bank" / "manifest.json").exists()
    assert _wait_for_step(emr, cluster_id, bad) == "FAILED"
    # spark-submit in client mode passes the Python driver's output through its stdout.
    logs = _log(emulator, cluster_id, bad, "stdout") + _log(emulator, cluster_id, bad, "stderr")
    assert "error: input not found" in logs
    # As on EMR (cluster mode): the step's stderr names its YARN application, and the driver's
    # container log, there once the step has ended, holds the job's own output.
    applications = [submitted_application(_log(emulator, cluster_id, s, "stderr")) for s in (good, bad)]
    assert applications[0] and applications[1] and applications[0] != applications[1]
    s3 = client(emulator, "s3")
    bucket, prefix = containers_prefix("s3://logs/emr/", cluster_id, applications[1])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")["CommonPrefixes"]
    container = driver_container([p["Prefix"].removeprefix(prefix).rstrip("/") for p in listed])
    driver = "".join(
        gzip.decompress(
            s3.get_object(Bucket=bucket, Key=f"{prefix}{container}/{name}.gz")["Body"].read()
        ).decode()
        for name in ("stderr", "stdout")
    )
    assert "error: input not found" in driver
    assert "spark-submit" in " ".join(
        emr.describe_step(ClusterId=cluster_id, StepId=bad)["Step"]["Config"]["Args"]
    )
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "WAITING"

    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "TERMINATED"


def test_a_retry_finds_the_steps_it_already_added(emulator):
    emr = _emr(emulator)
    cluster_id = emr.run_job_flow(
        **job_flow_overrides(
            ClusterSettings(name="retry", log_uri="s3://logs/emr/", **in_network()), dag_id="t", run_id="r"
        )
    )["JobFlowId"]
    assert existing_step_ids(emr, cluster_id, ["train v1"]) is None
    step = {
        "Name": "train v1",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "--version"]},
    }
    (step_id,) = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step])["StepIds"]
    assert existing_step_ids(emr, cluster_id, ["train v1"]) == [step_id]
    assert _wait_for_step(emr, cluster_id, step_id) == "COMPLETED"
    assert existing_step_ids(emr, cluster_id, ["train v1"]) == [step_id]
    assert existing_step_ids(emr, cluster_id, ["train v1", "other"]) is None
    # A failed step is no reason not to try again.
    failing = step | {"Name": "broken", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["hive"]}}
    (failed_id,) = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[failing])["StepIds"]
    assert _wait_for_step(emr, cluster_id, failed_id) == "FAILED"
    assert existing_step_ids(emr, cluster_id, ["broken"]) is None


def test_the_add_steps_operator_retried_adds_nothing_the_second_time(emulator, monkeypatch):
    """The task itself, as Airflow calls it on a first try and on a retry."""
    from unittest import mock

    from scaling_platform.emr_operators import IdempotentEmrAddStepsOperator

    connection = {"conn_type": "aws", "extra": {"endpoint_url": emulator, "region_name": "us-east-1"}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    emr = _emr(emulator)
    cluster_id = emr.run_job_flow(
        **job_flow_overrides(
            ClusterSettings(name="op", log_uri="s3://logs/emr/", **in_network()), dag_id="t", run_id="r"
        )
    )["JobFlowId"]
    step = {
        "Name": "train v2",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "--version"]},
    }

    def attempt():
        operator = IdempotentEmrAddStepsOperator(
            task_id="add_training_step", job_flow_id=cluster_id, steps=[step], deferrable=False
        )
        return operator.execute({"ti": mock.MagicMock()})

    first = attempt()
    second = attempt()

    assert second == first
    assert [s["Id"] for s in emr.list_steps(ClusterId=cluster_id)["Steps"]] == first
