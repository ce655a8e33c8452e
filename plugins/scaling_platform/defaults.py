"""What the project's DAGs share: default_args (owner, retries, the failure notification), the
storage root and the dataset spec (Params that fall back to the deployment's Variables), the
model a run is about, and the check of every location a run is given."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import Param

from scaling_platform.jobs import PROJECT_ROOT
from scaling_platform.notifications import notify_failure


def default_args(**overrides: Any) -> dict[str, Any]:
    """A DAG's default_args: the project's defaults, then the DAG's own."""
    return {
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": notify_failure,
    } | overrides


def optional_param(title: str, description: str, **schema: Any) -> Param:
    """A Param a person may leave empty: its type allows null, so the trigger form does not call it
    required, and an emptied field is sent as null. `description` says what empty means."""
    kind = schema.pop("type", "string")
    return Param(None, type=["null", kind], title=title, description=description, **schema)


def existing_cluster_param() -> Param:
    return optional_param(
        "Existing EMR cluster",
        "A cluster id, j- and at least 8 capitals or digits (j-1A2B3C4D5E6F7): the step runs there "
        "and the cluster is neither created nor terminated; empty: a new cluster for this run",
        pattern=r"^j-[0-9A-Z]{8,}$",
    )


def storage_root_param() -> Param:
    return optional_param(
        "Storage root", "s3://bucket/prefix or a folder; empty: the deployment's Variable ml_storage_root"
    )


def storage_root(params: dict[str, Any], var: dict[str, Any]) -> str:
    """The run's storage root: its Param if given, else Variable ml_storage_root, else ./storage."""
    return str(params["storage_root"] or var["value"].get("ml_storage_root", "storage")).rstrip("/")


def spec_param() -> Param:
    return optional_param(
        "Dataset spec",
        "The spec (YAML) of the dataset to train on, e.g. specs/penguins.yaml or s3://bucket/specs/x.yaml; "
        "empty: the deployment's Variable ml_spec_uri",
    )


def spec_uri(params: dict[str, Any], var: dict[str, Any]) -> str:
    """The run's dataset spec: its Param if given, else Variable ml_spec_uri, else the bank spec."""
    return str(params.get("spec") or var["value"].get("ml_spec_uri", "specs/bank_marketing.yaml"))


# spark_jobs.locations.MODEL_NAME, spelled here because DAG files are parsed without the job
# package (a test keeps the two in step).
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def model_param(empty_means: str) -> Param:
    return optional_param(
        "Model (registry name)",
        f"Lower-case letters, digits, '-' and '_', as the spec's name; empty: {empty_means}",
        pattern=MODEL_NAME_PATTERN,
    )


def model_name(params: dict[str, Any], var: dict[str, Any]) -> str:
    """The model a run is about: its Param if given, else the name in the deployment's spec."""
    from spark_jobs.errors import JobError
    from spark_jobs.locations import check_name

    if not params.get("model"):
        return spec_name(spec_uri({}, var), var)
    try:
        return check_name(params["model"])
    except JobError as exc:
        raise AirflowFailException(str(exc)) from None


def spec_name(uri: str, var: dict[str, Any]) -> str:
    """The model name a spec gives (a relative path is the project's, as for the jobs)."""
    from spark_jobs.errors import JobError
    from spark_jobs.spec import load_spec

    check_locations(var, spec=uri)
    local = "://" not in uri and not os.path.isabs(uri)
    try:
        return load_spec(str(PROJECT_ROOT / uri) if local else uri).name
    except JobError as exc:
        raise AirflowFailException(str(exc)) from None


def spot_function(var: dict[str, Any], model: str) -> str:
    """The spot-predictions function of a model: `<Variable ml_lambda_function_prefix>-<model>`."""
    from scaling_platform.lambda_release import FUNCTION_PREFIX, function_name

    value = var["value"]
    if value.get("ml_lambda_function", None) is not None:
        raise AirflowFailException(
            "Variable ml_lambda_function is no longer read: each model has its own function, "
            "<prefix>-<model>, named by Variable ml_lambda_function_prefix; delete the old Variable "
            "(the next promotion releases the model's function)"
        )
    try:
        return function_name(model, value.get("ml_lambda_function_prefix", FUNCTION_PREFIX))
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


def check_locations(var: dict[str, Any], **locations: str | None) -> None:
    """Refuse, before any work, a location the jobs may not use: spark_jobs.locations' rules (no
    http://, no s3:// without a bucket, no '..', no system folder) and the deployment's Variable
    ml_allowed_prefixes. The task fails for good (a retry would be refused again), naming the rule."""
    from spark_jobs.locations import LocationError, allowed_prefixes, check_location

    allowed = allowed_prefixes(var["value"].get("ml_allowed_prefixes", ""))
    for what, uri in locations.items():
        if uri:
            try:
                check_location(uri, what.replace("_", " "), allowed)
            except LocationError as exc:
                raise AirflowFailException(str(exc)) from None
