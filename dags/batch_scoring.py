"""
### Batch scoring on Kubernetes, one pod per shard of the day

Runs after each nightly_training that ends with a champion (the `ml_scaling_champion` Asset),
and scores that night's new records with the champion of the model the event names (each model
named, when events of several models queued up), in the project's job image
(`docker/jobs.Dockerfile`) run by the KubernetesPodOperator.

1. `plan`: which partitions (`<storage root>/incoming/<model>/ds=<date>/`) this run scores;
2. `wait_for_input`: each waits for its `_SUCCESS` marker in reschedule mode (no worker slot held)
   for up to 6 hours; a manual run can fail or skip at once instead;
3. `shard`: each day split into shards of about `target_rows_per_shard` rows (whole files, or row
   groups of large Parquet files), at most `max_pods`; the model version is fixed here;
4. `score`: one mapped pod per shard, side by side; each streams its rows through Arrow and numpy
   (no JVM), writes its shard under the run's staging area with its own summary; a failed pod
   is retried alone, and clearing one re-runs only that shard;
5. `commit`: checks every shard's summary (rows in = scored + rejected, one model version, the
   planned input) and publishes `<storage root>/scores/<model>/ds=<date>/` whole (Parquet, the
   rows that broke the spec under `_rejected/`, one `_summary.json`, returned as its XCom).
   More than `max_rejected_ratio` of the day's rows breaking the spec fails the run and
   writes nothing.

Pods are deleted when they end, whatever happened; on failure a pod's container state (OOMKilled,
exit code) and events are in the task log. Bad input, a missing model and an OOM kill fail at
once; other pod failures are retried.

Offline (the default) the same operator talks to the local cloud emulator's pod API, which
validates each pod against the Kubernetes schemas and runs it as a container built from
docker/jobs.Dockerfile (podman or docker; a host process when there is neither).
Image and namespace come from Variables `ml_batch_image` and `ml_k8s_namespace`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, PokeReturnValue, TriggerRule, task
from scaling_platform import emr as emr_config
from scaling_platform import jobs
from scaling_platform.assets import CHAMPION, nights_by_model, run_date
from scaling_platform.batch_scoring import commit_shards, emr_scoring_arguments, plan_shards, scoring_pod
from scaling_platform.defaults import (
    check_locations,
    default_args,
    existing_cluster_param,
    model_name,
    model_param,
    optional_param,
    storage_root,
    storage_root_param,
)
from scaling_platform.emr_operators import (
    POLL_SECONDS,
    EmrCreateOrUseJobFlowOperator,
    EmrStepSensorWithLogs,
    EmrTerminateOwnJobFlowOperator,
    IdempotentEmrAddStepsOperator,
    wait_for_cluster,
)
from scaling_platform.pod_operators import JobPodOperator
from scaling_platform.storage_paths import storage_path

from spark_jobs.interface import Partition, ScoreSummary


def ready(partitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The partitions whose input is there."""
    return [where for where in partitions if storage_path(where["ready_uri"]).exists()]


def partition(
    root: str, model: str, date: str, params: dict[str, Any], version: str, run_id: str
) -> dict[str, Any]:
    """Where one model's day is read and written (the layout of spark_jobs.interface)."""
    where = Partition.of(
        root, model, date, run_id, params["max_rejected_ratio"], params["input_uri"], version
    )
    return where.model_dump()


log = logging.getLogger(__name__)
SCORING_TIMEOUT = 2 * 60 * 60  # seconds: an EMR step's
# Pods of one run at once: the cap on the max_pods Param (max_active_tis_per_dagrun is fixed
# when the DAG is parsed, so a Param cannot set it).
MAX_PODS = 16

with DAG(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    # After every nightly training that ends with a champion: no clock offset to tune.
    schedule=CHAMPION,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["scoring", "kubernetes", "spark"],
    default_args=default_args(retries=2, retry_delay=timedelta(minutes=2)),
    params={
        "date": optional_param(
            "Date to score",
            "A calendar date (YYYY-MM-DD); empty: the training night that triggered the run, or the "
            "run's logical date",
            format="date",
        ),
        "input_uri": optional_param(
            "Input",
            "File or folder of CSV or Parquet records; empty: "
            "<storage root>/incoming/<model>/ds=<date>/ (complete once its _SUCCESS marker is there)",
        ),
        "model": model_param(
            "the models whose champions triggered the run, else the one of Variable ml_spec_uri's spec"
        ),
        "model_version": optional_param(
            "Model version", "A version in the model's registry; empty: the champion"
        ),
        "if_input_missing": Param(
            "wait",
            enum=["wait", "fail", "skip"],
            title="If the input is not there",
            description="wait (up to 6 hours), fail at once, or skip the run",
        ),
        "max_rejected_ratio": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            title="Most rows that may break the spec",
            description="More fails the run and writes nothing",
        ),
        "target_rows_per_shard": Param(
            1_000_000,
            type="integer",
            minimum=1,
            title="Rows per pod",
            description="About this many rows per shard; each shard is scored in its own pod",
        ),
        "max_pods": Param(
            4,
            type="integer",
            minimum=1,
            maximum=MAX_PODS,
            title="Most pods",
            description="The day is split into at most this many shards, scored side by side",
        ),
        "engine": Param(
            "kubernetes",
            enum=["kubernetes", "emr"],
            title="Engine",
            description="kubernetes: the day in shards, one pod each (Arrow and numpy, no JVM); "
            "emr: the same job as one Spark step per day on an EMR cluster, for the largest days",
        ),
        "existing_cluster_id": existing_cluster_param(),
        "storage_root": storage_root_param(),
    },
) as dag:

    @task
    def plan(
        params: dict[str, Any], var: dict[str, Any], dag_run: Any, triggering_asset_events: Any, run_id: str
    ) -> list[dict[str, Any]]:
        """What this run scores, one partition per model (the layout of spark_jobs.interface): the
        Param's model, else each model whose champion triggered the run, else the deployment's."""
        from spark_jobs.locations import LocationError, check_version

        root = storage_root(params, var)
        check_locations(var, storage_root=root, input=params["input_uri"])
        try:
            version = check_version(params["model_version"]) if params["model_version"] else ""
        except LocationError as exc:
            raise AirflowFailException(str(exc)) from None
        nights = nights_by_model(triggering_asset_events)
        if params["model"] or not nights:
            model = model_name(params, var)
            nights = {model: nights.get(model, "")}
        if len(nights) > 1 and (params["input_uri"] or version):
            raise AirflowFailException(
                f"this run scores {', '.join(nights)}: an input_uri or model_version is one model's, "
                "so give the model too"
            )
        return [
            partition(root, model, params["date"] or night or run_date(dag_run), params, version, run_id)
            for model, night in nights.items()
        ]

    @task.sensor(poke_interval=300, timeout=6 * 60 * 60, mode="reschedule")
    def wait_for_input(where: dict[str, Any], params: dict[str, Any]) -> PokeReturnValue:
        if storage_path(where["ready_uri"]).exists():
            return PokeReturnValue(is_done=True)
        missing = f"no input for {where['date']}: {where['ready_uri']} does not exist"
        if params["if_input_missing"] == "fail":
            raise AirflowFailException(missing)
        if params["if_input_missing"] == "skip":
            raise AirflowSkipException(missing)
        log.info("%s yet; waiting", missing)
        return PokeReturnValue(is_done=False)

    @task.branch(trigger_rule=TriggerRule.ALL_DONE)
    def engine(params: dict[str, Any]) -> str:
        """Pods (the default) or an EMR cluster, as the Param says."""
        return "shard" if params["engine"] == "kubernetes" else "emr_plan"

    # After every partition's wait, whatever its outcome: one model's missing input leaves the
    # others' scoring alone (its commit then fails or skips as the Param says).
    @task(trigger_rule=TriggerRule.ALL_DONE)
    def shard(partitions: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
        """Each partition whose input is there, split into shards (whole files, or row groups of
        large Parquet files) of about `target_rows_per_shard` rows, at most `max_pods`."""
        plans = []
        for where in ready(partitions):
            plan = plan_shards(where, params["target_rows_per_shard"], params["max_pods"])
            version = plan["where"]["model_version"]
            log.info(
                "%s %s: %d shard(s), about %d row(s), version %s",
                where["model"], where["date"], plan["count"], plan["rows"], version,
            )  # fmt: skip
            plans.append(plan)
        return plans

    @task
    def pod_arguments(plans: list[dict[str, Any]]) -> list[list[str]]:
        return [arguments for plan in plans for arguments in plan["arguments"]]

    @task
    def commit(where: dict[str, Any], plans: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        """The partition's shards, checked and published whole with one summary (this task's
        XCom); a failing day (too many rejected rows, a shard not scored) commits nothing."""
        plan = next((p for p in plans if p["where"]["output_uri"] == where["output_uri"]), None)
        if plan is None:
            missing = f"nothing scored for {where['date']}: no input at {where['ready_uri']}"
            if params["if_input_missing"] == "skip":
                raise AirflowSkipException(missing)
            raise AirflowFailException(missing)
        return commit_shards(plan)

    @task
    def emr_plan(
        partitions: list[dict[str, Any]], params: dict[str, Any], var: dict[str, Any], run_id: str
    ) -> dict[str, Any]:
        """The EMR road: the job code shipped, the cluster, and one step per partition whose input
        is there, running the same scoring job with `--engine spark` (it claims and commits its
        partition itself, as the pods' commit does)."""
        found = ready(partitions)
        missing = [f"{w['model']} {w['date']}" for w in partitions if w not in found]
        if missing and (params["if_input_missing"] != "skip" or not found):
            message = f"no input for {', '.join(missing)}: nothing of it is scored on EMR"
            if params["if_input_missing"] == "skip":
                raise AirflowSkipException(message)
            raise AirflowFailException(message)
        code = jobs.ship_code(found[0]["storage_root"]).model_dump()
        try:
            cluster = emr_config.cluster_from_variables(
                var["value"],
                name=f"batch-scoring-{'-'.join(sorted({w['model'] for w in found}))}-{found[0]['date']}",
                task_spot_count=0,
                dag_id="batch_scoring",
                run_id=run_id,
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        steps = [
            emr_config.spark_submit_step(
                # The model and date in the name: a retry finds its own step on a shared cluster.
                name=f"score {w['model']} {w['date']}",
                shipped=code,
                job_args=emr_scoring_arguments(w),
            )
            for w in found
        ]
        return {"cluster": cluster, "steps": steps, "partitions": found}

    @task
    def emr_summaries(emr: dict[str, Any]) -> list[dict[str, Any]]:
        """Each partition's summary, committed by its step with its output: this run's."""
        summaries = []
        for where in emr["partitions"]:
            summary = ScoreSummary.parse(storage_path(where["summary_uri"]).read_text())
            if summary.run_id != where["run_id"]:
                raise AirflowFailException(f"{where['summary_uri']} was written by run {summary.run_id}")
            summaries.append(summary.model_dump())
        return summaries

    partitions = plan()
    route = engine()
    wait_for_input.expand(where=partitions) >> route

    # -- kubernetes: one pod per shard, then one commit per partition
    plans = shard(partitions)
    # One pod per shard of every partition, at most MAX_PODS at once; a failed pod is retried alone.
    pods = JobPodOperator.partial(
        task_id="score",
        **scoring_pod(),
        execution_timeout=timedelta(hours=2, minutes=30),
        retry_delay=timedelta(seconds=30),
        max_active_tis_per_dagrun=MAX_PODS,
    ).expand(arguments=pod_arguments(plans))
    # Every pod ended, whatever its outcome: each partition's commit judges its own shards, so
    # one model's failed pod leaves the others' commits alone (a failed plan fails them all).
    scored = EmptyOperator(task_id="scored", trigger_rule=TriggerRule.ALL_DONE)
    route >> plans
    pods >> scored >> commit.partial(plans=plans).expand(where=partitions)

    # -- emr: one cluster, one step per partition, always torn down (as nightly_training does)
    emr = emr_plan(partitions)
    route >> emr
    create_cluster = EmrCreateOrUseJobFlowOperator(
        task_id="create_cluster",
        job_flow_overrides=emr["cluster"],
        existing_job_flow_id="{{ params.existing_cluster_id or '' }}",
        emr_conn_id=None,
    )
    cluster_ready = wait_for_cluster(create_cluster.output)
    add_steps = IdempotentEmrAddStepsOperator(
        task_id="add_steps",
        job_flow_id=create_cluster.output,
        steps=emr["steps"],
        deferrable=False,
    )
    wait_for_steps = EmrStepSensorWithLogs.partial(
        task_id="wait_for_step",
        job_flow_id=create_cluster.output,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=SCORING_TIMEOUT,
        max_attempts=SCORING_TIMEOUT // POLL_SECONDS,
    ).expand(step_id=add_steps.output)
    terminate_cluster = EmrTerminateOwnJobFlowOperator(
        task_id="terminate_cluster",
        job_flow_id=create_cluster.output,
    ).as_teardown(setups=create_cluster)
    cluster_ready >> add_steps
    wait_for_steps >> emr_summaries(emr) >> terminate_cluster
