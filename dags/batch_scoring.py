"""
### Batch scoring on Kubernetes

Runs after each nightly_training that ends with a champion (the `ml_scaling_champion` Asset),
and scores that night's new records with the champion of the model the event names (each model
named, when events of several models queued up: one pod per model), in the project's job image
(`docker/jobs.Dockerfile`) run by the KubernetesPodOperator: local Spark in the pod applies the
model in a pandas UDF and commits `<storage root>/scores/<model>/ds=<date>/` whole (Parquet,
the rows that broke the spec under `_rejected/`, and `_summary.json`). The summary reaches XCom
through the `summary` task, not through an xcom sidecar.

The run waits for the day's input, `<storage root>/incoming/<model>/ds=<date>/_SUCCESS`, in
reschedule mode (no worker slot held while waiting), for up to 6 hours; a manual run can fail
or skip at once instead. More than `max_rejected_ratio` of rows breaking the spec fails the run
and writes nothing. The pod is deleted when it ends, whatever happened; on failure its container
state (OOMKilled, exit code) and events are in the task log. Bad input, a missing model and an
OOM kill fail at once; other pod failures are retried.

Offline (the default) the same operator talks to the local cloud emulator's pod API, which
validates the pod against the Kubernetes schemas and runs it as a container built from
docker/jobs.Dockerfile (podman or docker; a host process when there is neither).
Image and namespace come from Variables `ml_batch_image` and `ml_k8s_namespace`.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from airflow.sdk import DAG, Param, PokeReturnValue, task, task_group
from scaling_platform.assets import CHAMPION, nights_by_model, run_date
from scaling_platform.batch_scoring import scoring_arguments, scoring_pod
from scaling_platform.defaults import (
    check_locations,
    default_args,
    model_name,
    model_param,
    optional_param,
    storage_root,
    storage_root_param,
)
from scaling_platform.pod_operators import JobPodOperator
from scaling_platform.storage_paths import storage_path


def partition(root: str, model: str, date: str, params: dict, version: str, run_id: str) -> dict:
    """Where one model's day is read and written (the layout of spark_jobs.partitions)."""
    default_input = f"{root}/incoming/{model}/ds={date}"
    input_uri = params["input_uri"] or default_input
    output_uri = f"{root}/scores/{model}/ds={date}"
    return {
        "storage_root": root,
        "model": model,
        "date": date,
        "input_uri": input_uri,
        # The default partition is complete once its marker is there; a given input once it exists.
        "ready_uri": f"{default_input}/_SUCCESS" if input_uri == default_input else input_uri,
        "model_version": version,
        "max_rejected_ratio": params["max_rejected_ratio"],
        "output_uri": output_uri,
        "summary_uri": f"{output_uri}/_summary.json",
        "run_id": run_id,
    }


log = logging.getLogger(__name__)

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
        "storage_root": storage_root_param(),
    },
) as dag:

    @task
    def plan(params: dict, var: dict, dag_run: Any, triggering_asset_events: Any, run_id: str) -> list[dict]:
        """What this run scores, one partition per model (the layout of spark_jobs.partitions): the
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
    def wait_for_input(where: dict, params: dict) -> PokeReturnValue:
        if storage_path(where["ready_uri"]).exists():
            return PokeReturnValue(is_done=True)
        missing = f"no input for {where['date']}: {where['ready_uri']} does not exist"
        if params["if_input_missing"] == "fail":
            raise AirflowFailException(missing)
        if params["if_input_missing"] == "skip":
            raise AirflowSkipException(missing)
        log.info("%s yet; waiting", missing)
        return PokeReturnValue(is_done=False)

    @task
    def summary(where: dict) -> dict:
        """The job's summary, committed with its output: this run's, never an earlier one's."""
        doc = json.loads(storage_path(where["summary_uri"]).read_bytes())
        if doc.get("run_id") != where["run_id"]:
            raise AirflowFailException(f"{where['summary_uri']} was written by run {doc.get('run_id')}")
        return doc

    @task
    def pod_arguments(where: dict) -> list[str]:
        return scoring_arguments(where)

    # One group per model's partition: each waits, scores in its own pod and reads its summary on
    # its own, so one model's missing input or failed pod leaves the others' scoring alone.
    @task_group
    def scoring(where: dict) -> None:
        pod = JobPodOperator(
            task_id="score",
            arguments=pod_arguments(where),
            **scoring_pod(),
            execution_timeout=timedelta(hours=2, minutes=30),
        )
        wait_for_input(where) >> pod >> summary(where)

    scoring.expand(where=plan())
