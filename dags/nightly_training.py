"""
### Nightly training on Amazon EMR

Validates the input against the dataset spec, ships the job code and its Python environment to
the storage root, creates an EMR cluster (or uses the one named in the Params), runs the
training step (`spark-submit submit.py train ...`), waits for it, runs the metric gate and
promotes the new version, and always terminates a cluster it created (a teardown: a failed run
stays failed and leaves no cluster behind). A promoted version is released to the
spot-predictions Lambda function: its alias `live` moves only once the new function version
has answered a check request with the model's own answer.

Any dataset trains here with its spec and no code change: the scheduled run trains the dataset
of Variable `ml_spec_uri` (data: `ml_input_uri`); a run triggered with the `spec` and `input_uri`
Params trains another, into that model's own registry, with that spec's gate unless the gate
Params say otherwise, and releases it to that model's own function (`<prefix>-<model>`).

Offline (the default for `make run`) the same operators talk to the local cloud emulator,
which runs the step with local Spark. Where things live comes from Airflow Variables
(`ml_storage_root`, `ml_input_uri`, `ml_spec_uri`, `emr_log_uri`, `ml_lambda_role_arn`,
`ml_lambda_function_prefix`); the Params below override some of them per run from the trigger form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from airflow.sdk import DAG, Param, task
from scaling_platform import emr as emr_config
from scaling_platform import jobs
from scaling_platform.assets import CHAMPION
from scaling_platform.defaults import (
    check_locations,
    default_args,
    existing_cluster_param,
    optional_param,
    spec_name,
    spec_param,
    spec_uri,
    spot_function,
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
from scaling_platform.lambda_release import FunctionSettings, release_model

from spark_jobs.interface import ChampionEvent, Decision

TRAINING_TIMEOUT = 3 * 60 * 60  # seconds

with DAG(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["training", "emr", "spark"],
    default_args=default_args(),
    params={
        "input_uri": optional_param(
            "Input data", "CSV or Parquet file, folder or glob; empty: the deployment's Variable ml_input_uri"
        ),
        "storage_root": storage_root_param(),
        "spec": spec_param(),
        # Empty: the spec's own gate, so a dataset's thresholds live with its spec.
        "min_roc_auc": optional_param(
            "Gate: minimum ROC AUC",
            "From 0 to 1: a new version below it is kept but not promoted; empty: the spec's threshold",
            type="number",
            minimum=0,
            maximum=1,
        ),
        "min_pr_auc": optional_param(
            "Gate: minimum PR AUC",
            "From 0 to 1: a new version below it is kept but not promoted; empty: the spec's threshold",
            type="number",
            minimum=0,
            maximum=1,
        ),
        "tolerance": optional_param(
            "Gate: allowed drop vs champion",
            "From 0 to 1: how far below the champion's primary metric a new version may be; empty: the "
            "spec's tolerance",
            type="number",
            minimum=0,
            maximum=1,
        ),
        "task_spot_count": Param(
            0,
            type="integer",
            minimum=0,
            maximum=50,
            title="Spot task nodes",
            description="A whole number from 0 to 50: spot instances added to the cluster",
        ),
        "existing_cluster_id": existing_cluster_param(),
    },
) as dag:

    @task
    def resolve(params: dict[str, Any], var: dict[str, Any], ds_nodash: str, run_id: str) -> dict[str, Any]:
        """The run's effective settings: Params where given, else the deployment's Variables."""
        value = var["value"]
        if params["spec"] and not params["input_uri"] and params["spec"] != value.get("ml_spec_uri", None):
            raise AirflowFailException(
                "a spec in the Params needs its input_uri too: Variable ml_input_uri is the data of "
                "Variable ml_spec_uri's dataset"
            )
        cfg = {
            "input_uri": params["input_uri"] or value.get("ml_input_uri", "data/bank/bank-full.csv"),
            "spec_uri": spec_uri(params, var),
            "storage_root": storage_root(params, var),
            "log_uri": value.get("emr_log_uri", None),
        }
        if not cfg["log_uri"]:
            # No default: a bucket name is global, and one this project named may be someone else's.
            raise AirflowFailException(
                "Variable emr_log_uri is not set: name where EMR writes the cluster's logs, in a bucket "
                "this account owns (s3://<bucket>/emr/)"
            )
        check_locations(var, input=cfg["input_uri"], spec=cfg["spec_uri"], storage_root=cfg["storage_root"])
        return cfg | {
            "model": spec_name(cfg["spec_uri"], var),
            # One version id per logical date: a re-run of the same night names the same output.
            "version": f"nightly-{ds_nodash}",
            "run_id": run_id,
        }

    @task
    def validate_input(cfg: dict[str, Any]) -> dict[str, Any]:
        """The Spark-free part of the data contract, before any cluster costs money."""
        return jobs.check_input(cfg["input_uri"], cfg["spec_uri"]).model_dump()

    @task
    def ship_code(cfg: dict[str, Any], var: dict[str, Any]) -> dict[str, Any]:
        """The job code and its environment for the step; and, before any cluster costs money, the
        Lambda package a promotion will release (CI ships it: `make ship`; never built here)."""
        if var["value"].get("ml_lambda_role_arn", None):
            jobs.find_lambda_package(cfg["storage_root"])
        return jobs.ship_code(cfg["storage_root"]).model_dump()

    @task
    def cluster_request(cfg: dict[str, Any], params: dict[str, Any], var: dict[str, Any]) -> dict[str, Any]:
        """The cluster, in the deployment's network and with its IMDSv2 security configuration."""
        try:
            return emr_config.cluster_from_variables(
                var["value"],
                name=f"nightly-training-{cfg['model']}-{cfg['version']}",
                task_spot_count=params["task_spot_count"],
                dag_id="nightly_training",
                run_id=cfg["run_id"],
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None

    @task
    def step_request(cfg: dict[str, Any], code: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            emr_config.spark_submit_step(
                # The model in the name: a retry finds its own step on a shared cluster, never
                # another model's of the same night.
                name=f"train {cfg['model']} {cfg['version']}",
                shipped=code,
                job_args=jobs.training_arguments(
                    cfg["input_uri"], cfg["spec_uri"], cfg["storage_root"], cfg["version"], cfg["run_id"]
                ),
            )
        ]

    @task
    def promote(cfg: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Gate the new version (the spec's gate, with the Params that were given); the champion
        moves only if it passes."""
        minimums = {metric: params[f"min_{metric}"] for metric in ("roc_auc", "pr_auc")}
        decision = jobs.promote(
            cfg["storage_root"], cfg["spec_uri"], cfg["version"], minimums, params["tolerance"]
        )
        return decision.model_dump()

    @task
    def release_to_lambda(
        cfg: dict[str, Any], decision: dict[str, Any], var: dict[str, Any]
    ) -> dict[str, Any]:
        """Serve the new champion from the spot-predictions function: publish a version pinned to
        it, check that version's answer, then move the alias. A failure leaves the alias as it was."""
        from airflow.providers.amazon.aws.hooks.lambda_function import LambdaHook

        decided = Decision.model_validate(decision)
        if not decided.promoted:
            raise AirflowSkipException(f"{decided.version} was not promoted: the function is unchanged")
        role = var["value"].get("ml_lambda_role_arn", None)
        if not role:
            raise AirflowSkipException("Variable ml_lambda_role_arn is not set: no function to release to")
        settings = FunctionSettings(name=spot_function(var, decided.model), role_arn=role)
        client = LambdaHook(aws_conn_id="aws_default").conn
        return release_model(client, settings, cfg["storage_root"], decided.model, decided.version)

    @task(outlets=[CHAMPION])
    def publish_champion(decision: dict[str, Any], ds: str, outlet_events: Any) -> dict[str, Any]:
        """Tell the DAGs that follow training (batch_scoring) which champion tonight ended with."""
        decided = Decision.model_validate(decision)
        champion = decided.version if decided.promoted else decided.champion_before
        if not champion:
            raise AirflowSkipException(f"{decided.version} was not promoted and there is no champion yet")
        event = ChampionEvent(
            date=ds,
            model=decided.model,
            champion=champion,
            promoted=decided.promoted,
            version=decided.version,
        )
        outlet_events[CHAMPION].extra = event.model_dump()
        return event.model_dump()

    cfg = resolve()
    checked = validate_input(cfg)
    code = ship_code(cfg)
    create_cluster = EmrCreateOrUseJobFlowOperator(
        task_id="create_cluster",
        job_flow_overrides=cluster_request(cfg),
        existing_job_flow_id="{{ params.existing_cluster_id or '' }}",
        emr_conn_id=None,
    )
    checked >> create_cluster
    cluster_ready = wait_for_cluster(create_cluster.output)
    add_training_step = IdempotentEmrAddStepsOperator(
        task_id="add_training_step",
        job_flow_id=create_cluster.output,
        steps=step_request(cfg, code),
        # Only add the step: waiting is wait_for_training's job, which prints the step's logs.
        # (Deferrable, the provider's add-steps task would wait for the step itself.)
        deferrable=False,
    )
    # Deferred to the triggerer: the wait holds no worker slot, and the task hands over to the
    # trigger and back once, instead of being re-queued for every poke.
    wait_for_training = EmrStepSensorWithLogs(
        task_id="wait_for_training",
        job_flow_id=create_cluster.output,
        step_id="{{ ti.xcom_pull(task_ids='add_training_step')[0] }}",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=TRAINING_TIMEOUT,
        # Deferred, the wait lasts max_attempts * poke_interval instead of `timeout`.
        max_attempts=TRAINING_TIMEOUT // POLL_SECONDS,
    )
    # A teardown: runs whenever create_cluster succeeded, even after a failure, and leaves the
    # run failed; it terminates only a cluster this run created, never an existing one.
    terminate_cluster = EmrTerminateOwnJobFlowOperator(
        task_id="terminate_cluster",
        job_flow_id=create_cluster.output,
    ).as_teardown(setups=create_cluster)
    decision = promote(cfg)
    cluster_ready >> add_training_step >> wait_for_training >> decision >> terminate_cluster
    release_to_lambda(cfg, decision)
    publish_champion(decision)
