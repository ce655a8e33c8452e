"""Builders for the EMR requests of the DAGs: the cluster and the job steps.

Plain dicts in, plain dicts out, so they are unit-tested against botocore's request models and
the DAG stays thin. Only `usable_cluster` asks EMR anything, through the client it is given;
nothing here imports the job package.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient

# emr-7.13.0 ships Spark 3.5.6 and Python 3.11, the line the job package is pinned to.
EMR_RELEASE_LABEL = "emr-7.13.0"
# The tag that names the DAG run that created a cluster: only that run terminates it.
RUN_ID_TAG = "airflow-run-id"
# Where the packed job environment is unpacked on every node (spark-submit --archives X#env).
ENV_ALIAS = "environment"
# The managed service role EMR_DefaultRole_V2 acts only on a cluster, subnet and security groups
# that carry this tag (AmazonEMRServicePolicy_v2).
MANAGED_POLICY_TAG = "for-use-with-amazon-emr-managed-policies"


@dataclass(frozen=True)
class ClusterSettings:
    """What a person may change about the cluster; the defaults suit the bank data."""

    name: str
    log_uri: str
    release_label: str = EMR_RELEASE_LABEL
    job_flow_role: str = "EMR_EC2_DefaultRole"
    service_role: str = "EMR_DefaultRole_V2"
    # The name of an EMR security configuration (aws/emr-security-configuration.json: IMDSv2 only).
    security_configuration: str | None = None
    subnet_id: str | None = None
    # EMR-managed security groups: primary, core and task, and (in a private subnet) service access.
    security_groups: tuple[str, ...] = ()
    primary_instance_type: str = "m5.xlarge"
    core_instance_type: str = "m5.xlarge"
    core_instance_count: int = 1
    task_instance_type: str = "m5.xlarge"
    task_spot_count: int = 0
    idle_timeout_seconds: int = 3600
    tags: Mapping[str, str] = field(default_factory=dict)


def job_flow_overrides(settings: ClusterSettings, *, dag_id: str, run_id: str) -> dict[str, Any]:
    """RunJobFlow parameters: Spark on the EMR 7 line, on-demand primary and core, spot tasks.

    The cluster stays up between steps (the DAG adds them) and is torn down by the DAG's
    teardown task; the idle auto-termination policy is the safety net if even that fails.
    """
    groups = [
        _group("Primary", "MASTER", "ON_DEMAND", settings.primary_instance_type, 1),
        _group("Core", "CORE", "ON_DEMAND", settings.core_instance_type, settings.core_instance_count),
    ]
    if settings.task_spot_count > 0:
        groups.append(
            _group("Task (spot)", "TASK", "SPOT", settings.task_instance_type, settings.task_spot_count)
        )
    instances: dict[str, Any] = {
        "InstanceGroups": groups,
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    if settings.subnet_id:
        instances["Ec2SubnetId"] = settings.subnet_id
    if len(settings.security_groups) not in (0, 2, 3):
        raise ValueError(
            "security groups: give the primary's and the core and task nodes' (and the service access one)"
        )
    for key, group in zip(
        ("EmrManagedMasterSecurityGroup", "EmrManagedSlaveSecurityGroup", "ServiceAccessSecurityGroup"),
        settings.security_groups,
        strict=False,
    ):
        instances[key] = group
    overrides: dict[str, Any] = {
        "Name": settings.name,
        "ReleaseLabel": settings.release_label,
        "LogUri": settings.log_uri,
        "Applications": [{"Name": "Spark"}],
        "Instances": instances,
        "AutoTerminationPolicy": {"IdleTimeout": settings.idle_timeout_seconds},
        "JobFlowRole": settings.job_flow_role,
        "ServiceRole": settings.service_role,
        "VisibleToAllUsers": True,
        # Cost allocation: who started the cluster and for which run.
        "Tags": _tags(
            {
                "project": "ml-scaling",
                "airflow-dag": dag_id,
                RUN_ID_TAG: run_id,
                MANAGED_POLICY_TAG: "true",
                **settings.tags,
            }
        ),
    }
    if settings.security_configuration:
        overrides["SecurityConfiguration"] = settings.security_configuration
    return overrides


def spark_submit_step(
    *,
    name: str,
    shipped: Mapping[str, str],
    job_args: Sequence[str],
    conf: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An EMR step that runs a job CLI with spark-submit, its code and Python environment shipped.

    `shipped` is what `python -m spark_jobs package` prints: `code_uri`, the zip of the job
    package (--py-files), `entrypoint_uri`, and `environment_uri`, the packed Python environment
    (--archives), unpacked as ./environment on every node.
    """
    python = f"./{ENV_ALIAS}/bin/python"
    settings = {
        "spark.pyspark.python": python,
        "spark.yarn.appMasterEnv.PYSPARK_PYTHON": python,
        "spark.executorEnv.PYSPARK_PYTHON": python,
        **(conf or {}),
    }
    args = ["spark-submit", "--deploy-mode", "cluster"]
    for key, value in settings.items():
        args += ["--conf", f"{key}={value}"]
    args += [
        "--archives",
        f"{shipped['environment_uri']}#{ENV_ALIAS}",
        "--py-files",
        shipped["code_uri"],
        shipped["entrypoint_uri"],
        *job_args,
    ]
    return {
        "Name": name,
        # CONTINUE: the DAG decides what happens next and its teardown terminates the cluster,
        # so a failed step still leaves its logs and the run stays failed.
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def cluster_from_variables(
    value: Mapping[str, Any], *, name: str, task_spot_count: int, dag_id: str, run_id: str
) -> dict[str, Any]:
    """RunJobFlow parameters in the deployment's log bucket, network and IMDSv2 security
    configuration (Variables `emr_log_uri`, `ml_emr_security_configuration`, `ml_emr_subnet_id`,
    `ml_emr_security_groups`); a ValueError says which Variable is missing or wrong."""
    log_uri = value.get("emr_log_uri", None)
    if not log_uri:
        # No default: a bucket name is global, and one this project named may be someone else's.
        raise ValueError(
            "Variable emr_log_uri is not set: name where EMR writes the cluster's logs, in a bucket "
            "this account owns (s3://<bucket>/emr/)"
        )
    security_configuration = value.get("ml_emr_security_configuration", None)
    if not security_configuration:
        raise ValueError(
            "Variable ml_emr_security_configuration is not set: name the EMR security configuration "
            "created from aws/emr-security-configuration.json (IMDSv2 on every node; docs/aws.md)"
        )
    listed = (value.get("ml_emr_security_groups", None) or "").split(",")
    groups = tuple(g.strip() for g in listed if g.strip())
    settings = ClusterSettings(
        name=name,
        log_uri=log_uri,
        task_spot_count=task_spot_count,
        security_configuration=security_configuration,
        subnet_id=value.get("ml_emr_subnet_id", None) or None,
        security_groups=groups,
    )
    try:
        return job_flow_overrides(settings, dag_id=dag_id, run_id=run_id)
    except ValueError as exc:
        raise ValueError(f"Variable ml_emr_security_groups: {exc}") from None


def _group(name: str, role: str, market: str, instance_type: str, count: int) -> dict[str, Any]:
    return {
        "Name": name,
        "InstanceRole": role,
        "Market": market,
        "InstanceType": instance_type,
        "InstanceCount": count,
    }


def _tags(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"Key": k, "Value": str(v)[:256]} for k, v in tags.items()]


# States in which a cluster accepts and runs new steps.
_ACCEPTS_STEPS = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")


def usable_cluster(emr: EMRClient, cluster_id: str) -> str:
    """`cluster_id` if that cluster can take steps; else a ValueError saying why not."""
    try:
        status = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
    except emr.exceptions.InvalidRequestException as exc:
        raise ValueError(f"EMR cluster {cluster_id} not found: {exc}") from None
    if status["State"] not in _ACCEPTS_STEPS:
        reason = status.get("StateChangeReason", {}).get("Message", "")
        raise ValueError(
            f"EMR cluster {cluster_id} is {status['State']} and takes no steps. {reason}".strip()
        )
    return cluster_id


def log_location(log_uri: str) -> tuple[str, str]:
    """A LogUri (s3://bucket/prefix/) as its bucket and its key prefix ("" or ending in /)."""
    bucket, _, prefix = log_uri.removeprefix("s3://").removeprefix("s3n://").partition("/")
    return bucket, f"{prefix.rstrip('/')}/".lstrip("/")


def step_log_keys(log_uri: str, cluster_id: str, step_id: str) -> list[tuple[str, str]]:
    """(bucket, key) of a step's stderr and stdout, where EMR writes them under LogUri."""
    bucket, prefix = log_location(log_uri)
    folder = f"{prefix}{cluster_id}/steps/{step_id}"
    return [(bucket, f"{folder}/{name}.gz") for name in ("stderr", "stdout")]


# What YARN's client prints to the step's stderr when spark-submit --deploy-mode cluster submits.
_SUBMITTED = re.compile(r"Submitted application (application_\d+_\d+)")


def submitted_application(step_stderr: str) -> str | None:
    """The YARN application a step's spark-submit submitted, from the step's stderr, or None."""
    found = _SUBMITTED.search(step_stderr)
    return found.group(1) if found else None


def containers_prefix(log_uri: str, cluster_id: str, application: str) -> tuple[str, str]:
    """(bucket, key prefix) of the folder where EMR copies the application's container logs."""
    bucket, prefix = log_location(log_uri)
    return bucket, f"{prefix}{cluster_id}/containers/{application}/"


# A container id: container_[e<epoch>_]<cluster timestamp>_<application>_<attempt>_<container>.
_DRIVER = re.compile(r"container_(?:e\d+_)?\d+_\d+_(\d+)_000001")


def driver_container(folders: Sequence[str]) -> str | None:
    """Of an application's container folders, its driver's (in cluster mode, the application
    master's: container 1) of the last attempt; None if it has none yet."""
    drivers = [(int(m.group(1)), name) for name in folders if (m := _DRIVER.fullmatch(name))]
    return max(drivers)[1] if drivers else None


MAX_LOG_LINE = 1000  # characters of one step log line shown in a task log


@dataclass
class StepLogFollower:
    """The lines a running step has added to its LogUri objects since the last look. EMR rewrites
    each object whole as the step goes on (every few minutes), so each look reads it again and
    keeps what lies past the bytes already shown, up to the last complete line."""

    keys: list[tuple[str, str]]
    shown: dict[str, int] = field(default_factory=dict)

    def new_lines(self, key: str, gzipped: bytes, final: bool = False) -> list[str]:
        """The new lines of one object (`final`: the step has ended, so a last line without its
        newline counts too), each prefixed with the object's name."""
        text = gzip.decompress(gzipped)
        start = self.shown.get(key, 0)
        end = len(text) if final else text.rfind(b"\n") + 1
        if end <= start:
            return []
        self.shown[key] = end
        name = key.rsplit("/", 1)[-1].removesuffix(".gz")
        lines = text[start:end].decode(errors="replace").splitlines()
        # A line is cut where a log line turns into a data dump.
        return [f"[step {name}] {_cut(line)}" for line in lines]


def _cut(line: str, most: int = MAX_LOG_LINE) -> str:
    return line if len(line) <= most else f"{line[:most]}... ({len(line) - most:,} more characters)"


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
