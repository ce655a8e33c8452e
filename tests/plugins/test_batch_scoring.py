"""The scoring pod as the operator builds it: valid for Kubernetes, locked down, sized, and
carrying a command line the job accepts; and which failures the operator retries."""

from __future__ import annotations

import re
from types import SimpleNamespace

import kubernetes_validate
import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from kubernetes.client import ApiClient
from scaling_platform.batch_scoring import JOB_UID, SCRATCH, PodSize, scoring_arguments, scoring_pod
from scaling_platform.pod_operators import JOB_INPUT_ERRORS, JobPodOperator

from spark_jobs import errors
from spark_jobs.__main__ import JOBS
from spark_jobs.scoring import score
from tests.conftest import ROOT

PLAN = {
    "storage_root": "s3://bucket/ml",
    "model": "bank-marketing",
    "date": "2026-11-20",
    "input_uri": "s3://bucket/ml/incoming/bank-marketing/ds=2026-11-20",
    "model_version": "",
    "max_rejected_ratio": 0.05,
    "run_id": "scheduled__2026-11-20",
}


def _operator(**overrides):
    kwargs = {"arguments": scoring_arguments(PLAN)} | scoring_pod() | overrides
    return JobPodOperator(task_id="score", **kwargs)


def _pod(**overrides):
    """The pod the operator would create, its Variables given, as sent to the API."""
    op = _operator(**overrides)
    op.image, op.namespace = "registry.example.com/ml-scaling-jobs:1.0", "ml-scaling"
    return ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))


def test_the_pod_passes_the_kubernetes_schemas_strictly():
    kubernetes_validate.validate(_pod(), "1.37.0", strict=True)


def test_the_pod_is_locked_down_and_spark_writes_only_to_scratch():
    pod = _pod()
    spec, (container,) = pod["spec"], pod["spec"]["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == JOB_UID
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    (volume,) = spec["volumes"]
    assert volume["emptyDir"]["sizeLimit"] == PodSize().scratch
    assert container["volumeMounts"] == [{"mountPath": SCRATCH, "name": volume["name"]}]
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 7200
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_the_pod_is_sized_for_the_arrow_engine_not_for_a_jvm():
    (container,) = _pod()["spec"]["containers"]
    resources, size = container["resources"], PodSize()
    assert resources["limits"] == {
        "cpu": str(size.cpu_limit),
        "memory": size.memory_limit,
        "ephemeral-storage": size.scratch,
    }
    assert resources["requests"]["cpu"] == size.cpu_request
    assert resources["requests"]["memory"] == size.memory_request
    # No local Spark to size (the pod's engine starts no JVM); pyarrow's threads, as many as the
    # pod's CPUs, not the node's.
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"OMP_NUM_THREADS": str(size.cpu_limit)}


def test_no_credentials_travel_in_the_pod():
    (container,) = _pod()["spec"]["containers"]
    words = " ".join(container["args"] + [f"{e['name']}={e.get('value')}" for e in container.get("env", [])])
    assert not re.search(r"AWS_|SECRET|PASSWORD|TOKEN|KEY", words, re.IGNORECASE)


def test_the_job_accepts_the_command_line_the_pod_carries():
    (container,) = _pod()["spec"]["containers"]
    assert not container.get("command")  # empty: the image's entrypoint, python -m spark_jobs
    job, *args = container["args"]
    assert job in JOBS
    parsed = score.parse_args(args)
    assert (parsed.storage_root, parsed.date, parsed.input) == (
        PLAN["storage_root"],
        PLAN["date"],
        PLAN["input_uri"],
    )
    assert parsed.model_version is None and parsed.run_id == "scheduled__2026-11-20"


def test_the_image_runs_as_the_user_and_with_the_scratch_the_pod_expects():
    from local_cloud.kubernetes.images import parse_dockerfile

    image = parse_dockerfile(ROOT / "docker" / "jobs.Dockerfile")
    assert image.uid == JOB_UID
    assert image.entrypoint == ("python", "-m", "spark_jobs")
    env = dict(image.env)
    assert env["HOME"] == env["TMPDIR"] == SCRATCH


def test_the_operators_exit_codes_are_the_jobs():
    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.JobError)
    }
    # 1 is any other failure (retried); 2 is also argparse's usage error; 6 is storage's 403.
    assert set(JOB_INPUT_ERRORS) == codes - {1} | {2, errors.ACCESS_DENIED_EXIT_CODE}


def _failed_pod(exit_code, reason):
    terminated = SimpleNamespace(exit_code=exit_code, reason=reason)
    status = SimpleNamespace(name="base", state=SimpleNamespace(terminated=terminated))
    return SimpleNamespace(
        metadata=SimpleNamespace(name="batch-scoring-x"), status=SimpleNamespace(container_statuses=[status])
    )


@pytest.mark.parametrize(
    ("exit_code", "reason", "raised", "words"),
    [
        (4, "Error", AirflowFailException, "exited 4 (the model registry"),
        (3, "Error", AirflowFailException, "data contract"),
        (137, "OOMKilled", AirflowFailException, "OOMKilled (exit code 137) at its memory limit 1Gi"),
        (1, "Error", AirflowException, "Pod batch-scoring-x returned a failure"),
        (137, "Error", AirflowException, "Pod batch-scoring-x returned a failure"),  # killed, not OOM
    ],
    ids=["registry", "contract", "oom", "crash", "sigkill"],
)
def test_failures_a_retry_cannot_fix_are_not_retried(monkeypatch, exit_code, reason, raised, words):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def provider_cleanup(self, pod, remote_pod, xcom_result=None, context=None):
        raise AirflowException(f"Pod {pod.metadata.name} returned a failure.")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", provider_cleanup)
    pod = _failed_pod(exit_code, reason)
    with pytest.raises(AirflowException, match=re.escape(words)) as info:
        _operator().cleanup(pod, pod)
    assert type(info.value) is raised


def test_a_shards_pod_gets_its_shard_as_the_jobs_cli_parses_it():
    from spark_jobs.scoring.score import parse_args

    shard = {"index": 1, "count": 3, "parts": [{"file": 4, "row_groups": [2, 3]}]}
    arguments = scoring_arguments(PLAN, shard)
    assert arguments[0] == "score" and "--shard" not in scoring_arguments(PLAN)
    args = parse_args(arguments[1:])
    assert args.shard == shard and args.engine == "arrow" and args.run_id == PLAN["run_id"]
