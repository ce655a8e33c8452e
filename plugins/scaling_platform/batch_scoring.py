"""The batch-scoring pod: KubernetesPodOperator arguments from small pure builders.

What the anchors' users trip over, and the answer here:
- pods left behind (apache/airflow 37263, 59083): `on_finish_action="delete_pod"`, an
  `active_deadline_seconds` the kubelet enforces even if Airflow goes away, and a durable
  task that reattaches to its pod after a lost worker instead of starting a second one;
- the xcom sidecar hanging (22318, 37298): no sidecar; the job commits its summary next to its
  output and a plain task reads it;
- OOM kills with no reason in the log (8722, 21284): `log_events_on_failure` logs the container's
  terminated state (reason OOMKilled, exit code 137) and the pod's events, and the container's
  termination message falls back to the log tail, so the task's error says what the job said;
- Spark in a locked-down pod: non-root, read-only root filesystem, every capability dropped,
  and a size-limited scratch volume where Spark and Python write.
Credentials never travel as arguments: on AWS the pod's service account maps to an IAM role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import models as k8s

# What the image is called and where pods run: Airflow Variables, so a deployment changes them
# without a code change (docker/jobs.Dockerfile builds the image; `make job-image`).
IMAGE = "{{ var.value.get('ml_batch_image', 'ml-scaling-jobs:latest') }}"
NAMESPACE = "{{ var.value.get('ml_k8s_namespace', 'ml-scaling') }}"
SERVICE_ACCOUNT = "ml-scaling-jobs"
SCRATCH = "/scratch"  # the image's HOME and TMPDIR
JOB_UID = 10001  # the image's USER


@dataclass(frozen=True)
class PodSize:
    """CPU, memory and scratch for one scoring pod. The Arrow engine holds about one batch of
    65,536 rows at a time: 230 MB at its peak on a 2,000,000-row day (bench/bench_scoring_day.py),
    whatever the size of the shard."""

    cpu_request: str = "1"
    cpu_limit: int = 2  # pyarrow reads and decodes on threads of its own
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    scratch: str = "2Gi"


def scoring_arguments(where: dict[str, Any], shard: dict[str, Any] | None = None) -> list[str]:
    """`python -m spark_jobs score ...` (the image's entrypoint gives `python -m spark_jobs`) for
    one of the plan task's partitions, or one shard of it (spark_jobs.scoring.shards.plan)."""
    arguments = [
        "score",
        "--storage-root", where["storage_root"],
        "--model", where["model"],
        "--date", where["date"],
        "--input", where["input_uri"],
        "--model-version", where["model_version"],
        "--max-rejected-ratio", str(where["max_rejected_ratio"]),
        "--run-id", where["run_id"],
    ]  # fmt: skip
    return arguments + (["--shard", json.dumps(shard, separators=(",", ":"))] if shard else [])


def emr_scoring_arguments(where: dict[str, Any]) -> list[str]:
    """The same job for a whole partition as one EMR step (submit.py ARGS): the Spark engine."""
    return [*scoring_arguments(where), "--engine", "spark"]


def plan_shards(where: dict[str, Any], target_rows: int, max_pods: int) -> dict[str, Any]:
    """One partition's shards (spark_jobs.scoring.shards plan), fixed for the run: the model version (the
    champion now, so every pod scores with the same one even if it changes meanwhile), the
    input's fingerprint, and each shard's pod arguments."""
    from scaling_platform.jobs import REFUSED_EXIT_CODES, run_job
    from spark_jobs.interface import ShardPlan

    args = ["--storage-root", where["storage_root"], "--model", where["model"], "--date", where["date"]]
    args += ["--input", where["input_uri"], "--target-rows", str(target_rows), "--max-shards", str(max_pods)]
    if where["model_version"]:
        args += ["--model-version", where["model_version"]]
    # A model version the registry lacks (exit 4) is not there on a retry either.
    planned = run_job("shards", "plan", *args, answer=ShardPlan, refused=(*REFUSED_EXIT_CODES, 4))
    fixed = where | {"model_version": planned.model_version}
    return {
        "where": fixed,
        "fingerprint": planned.fingerprint,
        "count": len(planned.shards),
        "rows": sum(s.rows for s in planned.shards),
        "arguments": [scoring_arguments(fixed, s.model_dump()) for s in planned.shards],
    }


def commit_shards(plan: dict[str, Any]) -> dict[str, Any]:
    """Publish a partition's scored shards as the day (spark_jobs.scoring.shards commit); its summary."""
    from scaling_platform.jobs import run_job
    from spark_jobs.interface import ScoreSummary

    where = plan["where"]
    args = ["--storage-root", where["storage_root"], "--model", where["model"], "--date", where["date"]]
    args += [
        "--run-id",
        where["run_id"],
        "--shards",
        str(plan["count"]),
        "--fingerprint",
        plan["fingerprint"],
    ]
    args += ["--max-rejected-ratio", str(where["max_rejected_ratio"])]
    # Copying a large day's parts on an object store takes a while.
    summary = run_job("shards", "commit", *args, answer=ScoreSummary, timeout=3 * 60 * 60)
    return summary.model_dump()


def container_resources(size: PodSize) -> k8s.V1ResourceRequirements:
    from kubernetes.client import models as k8s

    return k8s.V1ResourceRequirements(
        requests={"cpu": size.cpu_request, "memory": size.memory_request, "ephemeral-storage": "1Gi"},
        limits={"cpu": str(size.cpu_limit), "memory": size.memory_limit, "ephemeral-storage": size.scratch},
    )


def engine_env(size: PodSize) -> dict[str, str]:
    """pyarrow's thread pool sized to the pod's CPU limit (Arrow reads OMP_NUM_THREADS): in a
    container it would count the node's cores, and 64 threads under a 2-CPU quota are throttled."""
    return {"OMP_NUM_THREADS": str(size.cpu_limit)}


def pod_security_context() -> k8s.V1PodSecurityContext:
    from kubernetes.client import models as k8s

    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=JOB_UID,
        run_as_group=JOB_UID,
        fs_group=JOB_UID,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.V1SecurityContext:
    from kubernetes.client import models as k8s

    return k8s.V1SecurityContext(
        run_as_non_root=True,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
    )


def scratch_volume(size: PodSize) -> tuple[k8s.V1Volume, k8s.V1VolumeMount]:
    """The one writable place in the pod, wiped with it."""
    from kubernetes.client import models as k8s

    volume = k8s.V1Volume(name="scratch", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=size.scratch))
    return volume, k8s.V1VolumeMount(name="scratch", mount_path=SCRATCH)


def scoring_pod(size: PodSize = PodSize()) -> dict[str, Any]:
    """KubernetesPodOperator arguments for the scoring job but its command line (one per
    partition: scoring_arguments), task_id and retries (the DAG's)."""
    volume, mount = scratch_volume(size)
    return {
        "kubernetes_conn_id": "kubernetes_default",
        "namespace": NAMESPACE,
        "image": IMAGE,
        "name": "batch-scoring",
        "random_name_suffix": True,
        "env_vars": engine_env(size),
        "labels": {"app.kubernetes.io/name": "ml-scaling", "app.kubernetes.io/component": "batch-scoring"},
        "container_resources": container_resources(size),
        "security_context": pod_security_context(),
        "container_security_context": container_security_context(),
        "volumes": [volume],
        "volume_mounts": [mount],
        "service_account_name": SERVICE_ACCOUNT,
        # The job reads storage as its service account's IAM role; it never talks to the API server.
        "automount_service_account_token": False,
        "image_pull_policy": "IfNotPresent",
        "get_logs": True,
        "log_events_on_failure": True,
        "on_finish_action": "delete_pod",
        # A worker lost mid-run: the next try watches the same pod instead of starting a second one.
        "durable": True,
        "do_xcom_push": False,
        # The kubelet's own deadline: the pod stops even if the worker that watched it is gone.
        "active_deadline_seconds": 2 * 60 * 60,
        # Pulling the image onto a new node (or waiting for the node) takes minutes.
        "startup_timeout_seconds": 15 * 60,
        "termination_grace_period": 30,
        "termination_message_policy": "FallbackToLogsOnError",
    }
