"""Thin subclasses of the amazon provider's EMR operators for its users' known pains.

- A retried add-steps task must not add the same step twice (apache/airflow issue 28704).
- A failed step's logs must reach the Airflow task log (issues 23437, 29939).
- A run may use an existing cluster: then it neither creates nor terminates one. (Skipping
  the create task instead would skip every task in its setup/teardown scope.)
- How often a wait asks EMR is a deployment setting (Variable ml_emr_poll_seconds), not code:
  minutes suit a real cluster, seconds the emulator.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.amazon.aws.links.emr import get_log_uri
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrJobFlowSensor, EmrStepSensor
from airflow.providers.amazon.aws.triggers.emr import EmrStepSensorTrigger
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from scaling_platform.aws_clients import emr_client, s3_client
from scaling_platform.emr import (
    RUN_ID_TAG,
    StepLogFollower,
    containers_prefix,
    driver_container,
    log_location,
    step_log_keys,
    submitted_application,
    tail,
    usable_cluster,
)
from scaling_platform.emr_links import EmrStepLogsLink, SparkHistoryServerLink

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger, TriggerEvent
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_emr.literals import StepStateType
    from mypy_boto3_s3 import S3Client
    from pydantic import JsonValue

# How often the waits ask EMR, unless Variable ml_emr_poll_seconds says otherwise: a cluster
# starts in minutes and a step runs for minutes. Not shorter: a reschedule-mode sensor
# re-queued before the executor has reported its last poke is failed by Airflow's scheduler
# (apache/airflow#71172; seen offline with a 5 s poke on a loaded machine, where the report came
# 5.5 s after the poke).
POLL_SECONDS = 30

# Steps in these states already do, or did, the work: a retry must not add them again.
_LIVE_OR_DONE: list[StepStateType] = ["PENDING", "CANCEL_PENDING", "RUNNING", "COMPLETED"]
_ENDED_BADLY = ("FAILED", "CANCELLED", "INTERRUPTED")
DRIVER_TAIL_LINES = 60  # of the driver's stderr and stdout, once the step has ended
_ENDED = ("COMPLETED", *_ENDED_BADLY)


def existing_step_ids(emr: EMRClient, cluster_id: str, names: list[str]) -> list[str] | None:
    """Ids of live or completed steps with these names, in order, if all exist; else None."""
    newest_first: dict[str, str] = {}
    for page in emr.get_paginator("list_steps").paginate(ClusterId=cluster_id, StepStates=_LIVE_OR_DONE):
        for step in page["Steps"]:
            newest_first.setdefault(step["Name"], step["Id"])
    if names and all(n in newest_first for n in names):
        return [newest_first[n] for n in names]
    return None


class PolledFromVariable:
    """A sensor mixin: the poke interval is Variable ml_emr_poll_seconds when it is set (read each
    time the task runs), else the DAG's."""

    poke_interval: float
    timeout: float

    def execute(self, context: Context) -> Any:
        from airflow.sdk import Variable

        seconds = Variable.get("ml_emr_poll_seconds", default=None)
        if seconds is not None:
            try:
                self.poke_interval = float(seconds)
            except ValueError:
                self.poke_interval = 0
            if not 1 <= self.poke_interval <= 3600:
                raise AirflowFailException(
                    "Variable ml_emr_poll_seconds must be a number of seconds from 1 to 3600, "
                    f"not {seconds[:40]!r}"
                )
            if getattr(self, "deferrable", False):
                # Deferred, a wait lasts max_attempts polls.
                self.max_attempts = max(1, int(self.timeout // self.poke_interval))
        return super().execute(context)  # type: ignore[misc]


class EmrJobFlowSensorPolled(PolledFromVariable, EmrJobFlowSensor):
    """EmrJobFlowSensor polling as the deployment says."""


class EmrCreateOrUseJobFlowOperator(EmrCreateJobFlowOperator):
    """EmrCreateJobFlowOperator that, given `existing_job_flow_id`, checks and returns that cluster."""

    template_fields = (*EmrCreateJobFlowOperator.template_fields, "existing_job_flow_id")

    def __init__(self, *, existing_job_flow_id: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.existing_job_flow_id = existing_job_flow_id

    def execute(self, context: Context) -> str | None:
        if self.existing_job_flow_id:
            self.log.info("Using the existing cluster %s: not creating one", self.existing_job_flow_id)
            try:
                return usable_cluster(emr_client(self.hook), self.existing_job_flow_id)
            except ValueError as exc:
                # Missing or ended: a retry a minute later finds it no more usable.
                raise AirflowFailException(str(exc)) from None
        return super().execute(context)


class EmrTerminateOwnJobFlowOperator(EmrTerminateJobFlowOperator):
    """EmrTerminateJobFlowOperator that terminates only a cluster this DAG run created (by its tag)."""

    def execute(self, context: Context) -> None:
        cluster = emr_client(self.hook).describe_cluster(ClusterId=self.job_flow_id)["Cluster"]
        tags = {t["Key"]: t["Value"] for t in cluster.get("Tags", [])}
        if tags.get(RUN_ID_TAG) != context["run_id"]:
            self.log.info("Cluster %s was not created by this run: leaving it running", self.job_flow_id)
            return
        super().execute(context)


class IdempotentEmrAddStepsOperator(EmrAddStepsOperator):
    """EmrAddStepsOperator that returns the existing step ids when a retry finds them on the cluster."""

    def execute(self, context: Context) -> list[str]:
        if self.job_flow_id and isinstance(self.steps, list):
            names = [step["Name"] for step in self.steps]
            existing = existing_step_ids(emr_client(self.hook), self.job_flow_id, names)
            if existing is not None:
                self.log.info("Steps %s are already on %s: not adding them again", existing, self.job_flow_id)
                context["ti"].xcom_push(key="job_flow_id", value=self.job_flow_id)
                return existing
        return super().execute(context)


class EmrStepSensorWithLogs(PolledFromVariable, EmrStepSensor):
    """EmrStepSensor that shows the step's stdout and stderr in the task log while it runs (their
    LogUri objects, as EMR writes them), then the tails of its Spark driver's container log (where
    a cluster-mode job's own output is), prints the tail of a failed step's logs, and polls as the
    deployment says.

    What has been shown is remembered by the trigger when deferred and by the task in poke mode;
    in reschedule mode, where every poke is a new process and Airflow clears the task's XComs at
    each one, by the task instance's state store (`context["task_state_store"]`), per try."""

    operator_extra_links = (  # type: ignore[assignment]  # the provider's type: its two links only
        *EmrStepSensor.operator_extra_links,
        EmrStepLogsLink(),
        SparkHistoryServerLink(),
    )

    def poke(self, context: Context) -> bool:
        self._persist_step_logs_link(context)  # at every poke: reschedule mode clears XComs
        try:
            done = bool(super().poke(context))
        except AirflowException as exc:
            try:
                self._show_new_lines(context, final=True)
            finally:
                self._fail_with_logs(exc, context)
            raise
        self._show_new_lines(context, final=done)
        if done:
            self._show_driver_log(context)
        return done

    def defer(
        self,
        *,
        trigger: BaseTrigger,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: timedelta | int | float | None = None,
    ) -> NoReturn:
        """The provider's wait, deferred to a trigger that also follows the step's logs."""
        if type(trigger) is EmrStepSensorTrigger:
            _, params = trigger.serialize()
            follower = self._follower()
            trigger = EmrStepLogTrigger(
                **params, log_keys=[list(k) for k in follower.keys], shown=follower.shown
            )
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        """Where a deferred wait ends (deferrable=True): a failed step's logs are printed here."""
        try:
            super().execute_complete(context, event)
        except AirflowException as exc:
            self._fail_with_logs(exc, context)
            raise  # not the step's failure (the wait ran out, say): the task may retry
        self._show_driver_log(context)

    def _log_uri(self) -> str | None:
        """The cluster's LogUri (asked once per process)."""
        if not hasattr(self, "_cluster_log_uri"):
            self._cluster_log_uri = get_log_uri(
                emr_client=emr_client(self.hook), job_flow_id=self.job_flow_id
            )
        return self._cluster_log_uri

    def _persist_step_logs_link(self, context: Context) -> None:
        try:
            log_uri = self._log_uri()
        except Exception as exc:  # a link is not worth failing the wait for
            self.log.warning("no EMR Step Logs link now: %s", exc)
            return
        if log_uri:
            log_bucket, log_prefix = log_location(log_uri)
            EmrStepLogsLink.persist(
                context=context,
                operator=self,
                region_name=self.hook.conn_region_name,
                aws_partition=self.hook.conn_partition,
                job_flow_id=self.job_flow_id,
                step_id=self.step_id,
                log_bucket=log_bucket,
                log_prefix=log_prefix,
            )

    def _follower(self) -> StepLogFollower:
        if getattr(self, "_log_follower", None) is None:
            log_uri = self._log_uri()
            keys = step_log_keys(log_uri, self.job_flow_id, self.step_id) if log_uri else []
            self._log_follower = StepLogFollower(keys)
        return self._log_follower

    def _show_new_lines(self, context: Context, final: bool) -> None:
        follower = self._follower()
        # Each reschedule-mode poke is a new process: what the last one showed is in the store.
        store = context.get("task_state_store") if self.mode == "reschedule" and not self.deferrable else None
        shown_key = f"emr_step_log_shown_{self.step_id}_try_{context['ti'].try_number}"
        if store is not None:
            try:
                kept = store.get(shown_key)
            except Exception as exc:  # then lines may be shown twice, never the step failed
                self.log.warning("what earlier pokes showed is unknown (%s)", exc)
                kept = None
            if isinstance(kept, dict):
                follower.shown = {k: v for k, v in kept.items() if isinstance(v, int)}
        s3 = self._s3()
        for bucket, key in follower.keys:
            try:
                lines = follower.new_lines(key, s3.get_object(Bucket=bucket, Key=key)["Body"].read(), final)
            except s3.exceptions.NoSuchKey:
                continue  # not written yet
            except Exception as exc:  # showing the logs must never fail a step that is fine
                self.log.warning("s3://%s/%s: not readable now (%s)", bucket, key, type(exc).__name__)
                continue
            for line in lines:
                self.log.info("%s", line)
        if store is not None and follower.shown:
            offsets: dict[str, JsonValue] = dict(follower.shown)
            try:
                store.set(shown_key, offsets)
            except Exception as exc:
                self.log.warning("what this poke showed was not kept (%s): the next may show it again", exc)

    def _fail_with_logs(self, exc: Exception, context: Context) -> None:
        """If the step itself ended badly, print its log tails and fail the task for good."""
        step = emr_client(self.hook).describe_step(ClusterId=self.job_flow_id, StepId=self.step_id)["Step"]
        if step["Status"]["State"] not in _ENDED_BADLY:
            return
        self.log.error(
            "EMR step %r (%s) failed. %s\n%s",
            step["Name"],
            self.step_id,
            self._safely(self._log_tails),
            self._driver_log(context),
        )
        # A failed step stays failed: retrying the wait would only wait for the same answer.
        raise AirflowFailException(f"EMR step {step['Name']!r} ({self.step_id}) failed: {exc}") from None

    def _safely(self, show: Callable[[], str]) -> str:
        try:
            return show()
        except Exception as exc:  # the step's own failure must still be the task's
            return f"(its logs: not shown, {type(exc).__name__}: {exc})"

    def _show_driver_log(self, context: Context) -> None:
        self.log.info("The step's Spark driver: %s", self._driver_log(context))

    def _log_tails(self) -> str:
        log_uri = self._log_uri()
        if not log_uri:
            return "The cluster has no LogUri, so there are no step logs to show."
        parts = []
        for bucket, key in step_log_keys(log_uri, self.job_flow_id, self.step_id):
            try:
                parts.append(f"--- tail of s3://{bucket}/{key}\n{tail(self._read_log(bucket, key))}")
            except Exception as exc:  # logs arrive late on EMR; say so rather than fail differently
                parts.append(f"--- s3://{bucket}/{key}: not readable yet ({exc})")
        return "\n".join(parts)

    def _driver_log(self, context: Context) -> str:
        """The tails of the step's Spark driver log (its YARN container's stderr and stdout: where a
        cluster-mode job's own output is on EMR), or why there is none to show. Its application's
        history server link is kept for the task's page. Never raises: a log is not worth failing
        a step for."""
        try:
            return self._read_driver_log(context)
        except Exception as exc:
            return f"not shown ({type(exc).__name__}: {exc})"

    def _read_driver_log(self, context: Context) -> str:
        log_uri = self._log_uri()
        if not log_uri:
            return "the cluster has no LogUri, so there is no driver log to show."
        ((bucket, key), _) = step_log_keys(log_uri, self.job_flow_id, self.step_id)
        try:
            application = submitted_application(self._read_log(bucket, key))
        except Exception as exc:
            return f"s3://{bucket}/{key} is not readable ({exc}), so the driver's application is unknown."
        if application is None:
            return f"s3://{bucket}/{key} names no YARN application: the step submitted none."
        self._persist_history_link(context, application)
        bucket, prefix = containers_prefix(log_uri, self.job_flow_id, application)
        s3 = self._s3()
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/").get("CommonPrefixes", [])
        container = driver_container([p["Prefix"].removeprefix(prefix).rstrip("/") for p in listed])
        if container is None:  # EMR copies container logs some minutes after the end
            return (
                f"application {application}: its container logs are not at s3://{bucket}/{prefix} yet; "
                "EMR copies them to LogUri some minutes after the application ends"
            )
        parts = [f"application {application}, container {container}"]
        for name in ("stderr", "stdout"):
            key = f"{prefix}{container}/{name}.gz"
            try:
                parts.append(
                    f"--- tail of s3://{bucket}/{key}\n{tail(self._read_log(bucket, key), DRIVER_TAIL_LINES)}"
                )
            except Exception as exc:
                parts.append(f"--- s3://{bucket}/{key}: not readable ({type(exc).__name__})")
        return "\n".join(parts)

    def _persist_history_link(self, context: Context, application: str) -> None:
        try:
            cluster = emr_client(self.hook).describe_cluster(ClusterId=self.job_flow_id)["Cluster"]
        except Exception as exc:  # a link is not worth failing the wait for
            self.log.warning("no Spark history server link: %s", exc)
            return
        if primary := cluster.get("MasterPublicDnsName"):
            SparkHistoryServerLink.persist(
                context=context,
                operator=self,
                region_name=self.hook.conn_region_name,
                aws_partition=self.hook.conn_partition,
                primary_dns=primary,
                application=application,
            )

    def _s3(self) -> S3Client:
        """The S3 client of the task's connection (made once per process)."""
        if getattr(self, "_s3_client", None) is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            self._s3_client = s3_client(S3Hook(aws_conn_id=self.aws_conn_id))
        return self._s3_client

    def _read_log(self, bucket: str, key: str) -> str:
        s3 = self._s3()
        return gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode(errors="replace")


class EmrStepLogTrigger(EmrStepSensorTrigger):
    """The provider's step wait, showing the step's new stdout and stderr lines at every poll (in
    the task's log: the triggerer sends a trigger's log there)."""

    def __init__(
        self, *, log_keys: list[list[str]] | None = None, shown: dict[str, int] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.follower = StepLogFollower([(b, k) for b, k in log_keys or []], dict(shown or {}))
        self.serialized_fields |= {"log_keys": log_keys or [], "shown": self.follower.shown}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import asyncio

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.providers.amazon.aws.utils.waiter_with_logging import RETRIABLE_ERROR_CODES
        from airflow.triggers.base import TriggerEvent as Event
        from botocore.exceptions import ClientError, NoCredentialsError

        emr_hook, s3_hook = self.hook(), S3Hook(**self._hook_parameters)
        # Untyped in Airflow and the provider: called through Any.
        TriggerEvent: Callable[..., Any] = Event
        connect: Callable[[Any], Any] = type(emr_hook).get_async_conn
        async with await connect(emr_hook) as emr, await connect(s3_hook) as s3:
            for _ in range(max(1, self.attempts)):
                try:
                    status = (await emr.describe_step(**self.waiter_args))["Step"]["Status"]
                except (ClientError, NoCredentialsError) as exc:
                    # As the provider's own wait: throttling and the like are asked again.
                    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else "NoCredentials"
                    if code not in RETRIABLE_ERROR_CODES | {"NoCredentials"}:
                        raise
                    self.log.warning("describing the step: %s; asking again", code)
                    await asyncio.sleep(self.waiter_delay)
                    continue
                ended = status["State"] in _ENDED
                await self._show(s3, final=ended)
                if status["State"] == "COMPLETED":
                    yield TriggerEvent({"status": "success", self.return_key: self.return_value})
                    return
                if ended:
                    why = status.get("FailureDetails") or status.get("StateChangeReason") or {}
                    message = f"{self.failure_message}: the step is {status['State']} {why}"
                    yield TriggerEvent(
                        {"status": "error", "message": message, self.return_key: self.return_value}
                    )
                    return
                await asyncio.sleep(self.waiter_delay)
        message = f"{self.failure_message}: still running after {self.attempts} polls"
        yield TriggerEvent({"status": "error", "message": message, self.return_key: self.return_value})

    async def _show(self, s3: Any, final: bool) -> None:
        from botocore.exceptions import ClientError

        for bucket, key in self.follower.keys:
            try:
                response = await s3.get_object(Bucket=bucket, Key=key)
                lines = self.follower.new_lines(key, await response["Body"].read(), final)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "NoSuchKey":  # else: not written yet
                    self.log.warning(
                        "s3://%s/%s: not readable now (%s)", bucket, key, exc.response["Error"]["Code"]
                    )
                continue
            except Exception as exc:  # showing the logs must never end the wait
                self.log.warning("s3://%s/%s: not readable now (%s)", bucket, key, type(exc).__name__)
                continue
            for line in lines:
                self.log.info("%s", line)


def wait_for_cluster(job_flow_id: Any) -> EmrJobFlowSensorPolled:
    """The `wait_for_cluster` task: until the cluster can take steps. A cluster that fails to
    start (roles, subnet, capacity) fails here, with EMR's reason, rather than later as a
    cancelled step."""
    return EmrJobFlowSensorPolled(
        task_id="wait_for_cluster",
        job_flow_id=job_flow_id,
        target_states=["WAITING", "RUNNING"],
        failed_states=["TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"],
        poke_interval=POLL_SECONDS,
        timeout=60 * 30,
        mode="reschedule",
        # Deferred, this sensor's trigger waits for termination whatever target_states says.
        deferrable=False,
    )
