"""The cncf-kubernetes provider's KubernetesPodOperator, told what the job's exit codes mean.

A pod that fails is retried by default. That is right for what a retry can fix (a node lost, the
pod evicted, a crash) and wrong for what it cannot: the job's own "your input or model is wrong"
exit codes, and an OOM kill at the same memory limit. Those fail the task at once, with a
message that says what happened and what to change, after the provider has logged the
container's state and the pod's events and deleted the pod.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context
    from kubernetes.client import models as k8s

# spark_jobs.errors' exit codes (a test keeps the two in step): the job's input, spec or model
# registry is wrong, and running it again changes nothing.
JOB_INPUT_ERRORS = {
    2: "bad arguments or dataset spec",
    3: "the input breaks the data contract",
    4: "the model registry lacks what the job needs",
    5: "invalid records",
    6: "access denied: the pod's role may not make one of its storage requests",
    7: "the day's shards are incomplete: score the failed shard again",
}
OOM_EXIT_CODE = 137


def terminated(remote_pod: k8s.V1Pod | None, container: str) -> k8s.V1ContainerStateTerminated | None:
    """The container's terminated state in a pod read from the API, or None."""
    statuses = getattr(getattr(remote_pod, "status", None), "container_statuses", None) or []
    for status in statuses:
        if status.name == container and status.state and status.state.terminated:
            return status.state.terminated
    return None


class JobPodOperator(KubernetesPodOperator):
    """Runs a job package CLI in a pod; fails without retries when a retry cannot help."""

    def cleanup(
        self,
        pod: k8s.V1Pod,
        remote_pod: k8s.V1Pod,
        xcom_result: dict[str, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        try:
            super().cleanup(pod, remote_pod, xcom_result, context)
        except AirflowSkipException:
            raise
        except AirflowException as exc:
            state = terminated(remote_pod, self.base_container_name)
            name = getattr(getattr(pod, "metadata", None), "name", "?")
            if state is not None and state.reason == "OOMKilled":
                limits = getattr(getattr(self, "container_resources", None), "limits", None) or {}
                raise AirflowFailException(
                    f"pod {name}: container {self.base_container_name} was OOMKilled (exit code "
                    f"{state.exit_code}) at its memory limit {limits.get('memory', '(none)')}; "
                    "raise the limit (and the driver memory with it) or score smaller partitions. "
                    "Not retried: the same limit would fail the same way."
                ) from exc
            if state is not None and state.exit_code in JOB_INPUT_ERRORS:
                raise AirflowFailException(
                    f"pod {name}: the job exited {state.exit_code} ({JOB_INPUT_ERRORS[state.exit_code]}); "
                    f"its message is in the log above. Not retried: fix the cause and clear the task.\n{exc}"
                ) from exc
            raise
