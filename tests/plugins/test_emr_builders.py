"""EMR request builders: valid against botocore's EMR model, and carrying what the DAG promises."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.validate import ParamValidator
from scaling_platform.emr import (
    EMR_RELEASE_LABEL,
    MANAGED_POLICY_TAG,
    ClusterSettings,
    job_flow_overrides,
    spark_submit_step,
)

from tests.conftest import ROOT

EMR = botocore.session.get_session().get_service_model("emr")


def assert_valid(operation: str, params: dict) -> None:
    report = ParamValidator().validate(params, EMR.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def _settings(**changes) -> ClusterSettings:
    return ClusterSettings(name="nightly-training", log_uri="s3://bucket/emr-logs/", **changes)


def test_cluster_request_is_valid_and_on_the_emr7_spark_line():
    overrides = job_flow_overrides(_settings(task_spot_count=2), dag_id="nightly_training", run_id="r1")
    assert_valid("RunJobFlow", overrides)
    assert overrides["ReleaseLabel"] == EMR_RELEASE_LABEL and EMR_RELEASE_LABEL.startswith("emr-7.")
    assert overrides["Applications"] == [{"Name": "Spark"}]
    assert overrides["LogUri"] == "s3://bucket/emr-logs/"
    assert overrides["AutoTerminationPolicy"] == {"IdleTimeout": 3600}


def test_primary_and_core_on_demand_tasks_on_spot():
    groups = job_flow_overrides(_settings(task_spot_count=3), dag_id="d", run_id="r")["Instances"][
        "InstanceGroups"
    ]
    markets = {g["InstanceRole"]: (g["Market"], g["InstanceCount"]) for g in groups}
    assert markets == {"MASTER": ("ON_DEMAND", 1), "CORE": ("ON_DEMAND", 1), "TASK": ("SPOT", 3)}
    no_tasks = job_flow_overrides(_settings(), dag_id="d", run_id="r")["Instances"]["InstanceGroups"]
    assert "TASK" not in {g["InstanceRole"] for g in no_tasks}


def test_tags_carry_the_dag_run_for_cost_allocation():
    tags = job_flow_overrides(
        _settings(tags={"team": "ml"}),
        dag_id="nightly_training",
        run_id="scheduled__2026-11-24T00:00:00+00:00",
    )["Tags"]
    assert {"Key": "airflow-run-id", "Value": "scheduled__2026-11-24T00:00:00+00:00"} in tags
    assert {"Key": "airflow-dag", "Value": "nightly_training"} in tags
    assert {"Key": "team", "Value": "ml"} in tags


def test_the_security_configuration_file_requires_imdsv2_and_the_request_names_it():
    overrides = job_flow_overrides(_settings(security_configuration="imdsv2"), dag_id="d", run_id="r")
    assert overrides["SecurityConfiguration"] == "imdsv2"
    text = (ROOT / "aws" / "emr-security-configuration.json").read_text()
    config = json.loads(text)
    assert config["InstanceMetadataServiceConfiguration"] == {
        "MinimumInstanceMetadataServiceVersion": 2,
        "HttpPutResponseHopLimit": 1,
    }
    assert_valid("CreateSecurityConfiguration", {"Name": "imdsv2", "SecurityConfiguration": text})


def test_the_managed_role_gets_its_tag_subnet_and_security_groups():
    overrides = job_flow_overrides(
        _settings(subnet_id="subnet-1", security_groups=("sg-primary", "sg-nodes", "sg-service")),
        dag_id="d",
        run_id="r",
    )
    assert_valid("RunJobFlow", overrides)
    assert overrides["ServiceRole"] == "EMR_DefaultRole_V2"
    assert {"Key": MANAGED_POLICY_TAG, "Value": "true"} in overrides["Tags"]
    instances = overrides["Instances"]
    assert (instances["EmrManagedMasterSecurityGroup"], instances["EmrManagedSlaveSecurityGroup"]) == (
        "sg-primary",
        "sg-nodes",
    )
    assert instances["ServiceAccessSecurityGroup"] == "sg-service"
    with pytest.raises(ValueError, match="security groups"):
        job_flow_overrides(_settings(security_groups=("sg-one",)), dag_id="d", run_id="r")


@pytest.mark.parametrize("count", [0, 2])
def test_subnet_and_counts_stay_valid(count):
    overrides = job_flow_overrides(
        _settings(subnet_id="subnet-123", task_spot_count=count), dag_id="d", run_id="r"
    )
    assert overrides["Instances"]["Ec2SubnetId"] == "subnet-123"
    assert_valid("RunJobFlow", overrides)


def test_spark_submit_step_ships_code_and_environment():
    step = spark_submit_step(
        name="train bank-marketing 2026-11-24",
        shipped={
            "entrypoint_uri": "s3://bucket/code/v1/train_entry.py",
            "code_uri": "s3://bucket/code/v1/spark_jobs.zip",
            "environment_uri": "s3://bucket/code/v1/environment.tar.gz",
        },
        job_args=["--input", "s3://bucket/data/bank-full.csv", "--storage-root", "s3://bucket/ml"],
        conf={"spark.sql.shuffle.partitions": "64"},
    )
    assert_valid("AddJobFlowSteps", {"JobFlowId": "j-123", "Steps": [step]})
    args = step["HadoopJarStep"]["Args"]
    assert step["HadoopJarStep"]["Jar"] == "command-runner.jar"
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert args[args.index("--archives") + 1] == "s3://bucket/code/v1/environment.tar.gz#environment"
    assert args[args.index("--py-files") + 1] == "s3://bucket/code/v1/spark_jobs.zip"
    assert "spark.pyspark.python=./environment/bin/python" in args
    assert "spark.sql.shuffle.partitions=64" in args
    # The entry point comes after every spark-submit option, the job's own arguments after it.
    entry = args.index("s3://bucket/code/v1/train_entry.py")
    assert args[entry + 1 :] == [
        "--input",
        "s3://bucket/data/bank-full.csv",
        "--storage-root",
        "s3://bucket/ml",
    ]
    assert step["ActionOnFailure"] == "CONTINUE"


def test_step_log_keys_follow_the_emr_layout():
    from scaling_platform.emr import step_log_keys, tail

    assert step_log_keys("s3://logs/emr/", "j-1", "s-2") == [
        ("logs", "emr/j-1/steps/s-2/stderr.gz"),
        ("logs", "emr/j-1/steps/s-2/stdout.gz"),
    ]
    assert step_log_keys("s3://logs", "j-1", "s-2")[0] == ("logs", "j-1/steps/s-2/stderr.gz")
    assert tail("a\nb\nc\n", 2) == "b\nc"


def test_the_step_logs_link_opens_the_steps_folder_under_log_uri():
    from scaling_platform.emr import log_location
    from scaling_platform.emr_links import EmrStepLogsLink, SparkHistoryServerLink

    bucket, prefix = log_location("s3://logs/emr/")
    link = EmrStepLogsLink().format_link(
        aws_domain="aws.amazon.com",
        region_name="eu-west-1",
        job_flow_id="j-1",
        step_id="s-2",
        log_bucket=bucket,
        log_prefix=prefix,
    )
    assert link == "https://console.aws.amazon.com/s3/buckets/logs?region=eu-west-1&prefix=emr/j-1/steps/s-2/"
    assert log_location("s3://logs") == ("logs", "")
    history = SparkHistoryServerLink().format_link(
        primary_dns="ip-10-0-0-1.ec2.internal", application="application_1_0002"
    )
    assert history == "http://ip-10-0-0-1.ec2.internal:18080/history/application_1_0002/jobs/"


def test_the_driver_log_is_found_from_the_application_the_step_submitted():
    from scaling_platform.emr import containers_prefix, driver_container, submitted_application

    stderr = (
        "25/12/05 10:00:01 INFO Client: Requesting a new application from cluster with 2 NodeManagers\n"
        "25/12/05 10:00:02 INFO Client: Submitted application application_1733392800000_0003\n"
        "25/12/05 10:00:03 INFO Client: Application report for application_1733392800000_0003 "
        "(state: ACCEPTED)\n"
    )
    assert submitted_application(stderr) == "application_1733392800000_0003"
    assert submitted_application("Error: no main class given\n") is None
    # EMR's layout: <LogUri>/<cluster>/containers/<application>/<container>/.
    assert containers_prefix("s3://logs/emr/", "j-1", "application_1733392800000_0003") == (
        "logs",
        "emr/j-1/containers/application_1733392800000_0003/",
    )
    # The driver is container 1 of the last attempt, with or without the ResourceManager's epoch.
    folders = [
        "container_1733392800000_0003_01_000002",
        "container_1733392800000_0003_01_000001",
        "container_e02_1733392800000_0003_02_000001",
        "container_1733392800000_0003_02_000003",
    ]
    assert driver_container(folders) == "container_e02_1733392800000_0003_02_000001"
    assert driver_container(folders[:2]) == "container_1733392800000_0003_01_000001"
    assert driver_container(["container_1733392800000_0003_01_000002"]) is None
    assert driver_container([]) is None


def test_an_existing_cluster_must_exist_and_take_steps():
    import boto3
    from moto import mock_aws
    from scaling_platform.emr import usable_cluster

    with mock_aws():
        emr = boto3.client("emr", region_name="us-east-1")
        cluster_id = emr.run_job_flow(**job_flow_overrides(_settings(), dag_id="d", run_id="r"))["JobFlowId"]
        assert usable_cluster(emr, cluster_id) == cluster_id
        with pytest.raises(ValueError, match="j-0000000000 not found"):
            usable_cluster(emr, "j-0000000000")
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
        with pytest.raises(ValueError, match=f"{cluster_id} is TERMINATED and takes no steps"):
            usable_cluster(emr, cluster_id)


def test_the_log_follower_shows_each_complete_line_once_as_emr_rewrites_the_object():
    import gzip

    from scaling_platform.emr import StepLogFollower

    key = "emr/j-1/steps/s-2/stderr.gz"
    follower = StepLogFollower([("logs", key)])
    # EMR uploads the whole log again each time; the last line may still be half written.
    assert follower.new_lines(key, gzip.compress(b"read 10 rows\nscor")) == ["[step stderr] read 10 rows"]
    assert follower.new_lines(key, gzip.compress(b"read 10 rows\nscor")) == []
    grown = b"read 10 rows\nscored 10\nrejected 0\nwrote"
    assert follower.new_lines(key, gzip.compress(grown)) == [
        "[step stderr] scored 10",
        "[step stderr] rejected 0",
    ]
    # When the step has ended, the last line counts without its newline.
    assert follower.new_lines(key, gzip.compress(grown), final=True) == ["[step stderr] wrote"]
    assert follower.new_lines(key, gzip.compress(grown), final=True) == []


def test_the_log_trigger_carries_what_the_first_poke_already_showed():
    """Deferred, the wait continues in the triggerer from where the task's first poke stopped."""
    from scaling_platform.emr_operators import EmrStepLogTrigger

    trigger = EmrStepLogTrigger(
        job_flow_id="j-1",
        step_id="s-2",
        waiter_delay=2,
        waiter_max_attempts=3,
        log_keys=[["logs", "k"]],
        shown={"k": 10},
    )
    path, kwargs = trigger.serialize()
    assert path == "scaling_platform.emr_operators.EmrStepLogTrigger"
    again = EmrStepLogTrigger(**json.loads(json.dumps(kwargs)))
    assert again.follower.keys == [("logs", "k")] and again.follower.shown == {"k": 10}
    assert again.waiter_args == {"ClusterId": "j-1", "StepId": "s-2"} and again.attempts == 3
