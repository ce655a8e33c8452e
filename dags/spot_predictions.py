"""
### Spot predictions on AWS Lambda

Scores a handful of records now with a model's champion, without waiting for a batch run:
trigger this DAG with the records in the form (an array of objects, one per client, with the
dataset spec's feature fields) and, for another dataset than the deployment's, the model. The
`live` alias of that model's spot-predictions function (`<prefix>-<model>`) answers;
`nightly_training` moves it to each newly promoted version once the new version has answered a
check request correctly.

For a batch over Lambda's 6 MB request limit, write the records to storage as JSON Lines and
give their URI instead: the function reads them and writes its predictions next to the response.
Every response is stored under `<storage root>/predictions/spot/<run id>/`; XCom holds a summary,
and the predictions themselves only when they are small.

A record that breaks the spec fails the task with the function's message naming the record and
field. The client makes one attempt (no silent re-invocations) and waits up to 16 minutes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from scaling_platform.defaults import (
    check_locations,
    default_args,
    model_name,
    model_param,
    optional_param,
    spot_function,
    storage_root,
    storage_root_param,
)
from scaling_platform.lambda_operators import SpotPredictionOperator
from scaling_platform.lambda_release import ALIAS

# Two clients from the bank data (bank.csv rows 1 and 3): the trigger form shows the format.
EXAMPLE_RECORDS = [
    {
        "age": 30, "job": "unemployed", "marital": "married", "education": "primary", "default": "no",
        "balance": 1787, "housing": "no", "loan": "no", "contact": "cellular", "day": 19, "month": "oct",
        "duration": 79, "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown",
    },
    {
        "age": 35, "job": "management", "marital": "single", "education": "tertiary", "default": "no",
        "balance": 1350, "housing": "yes", "loan": "no", "contact": "cellular", "day": 16, "month": "apr",
        "duration": 185, "campaign": 1, "pdays": 330, "previous": 1, "poutcome": "failure",
    },
]  # fmt: skip

with DAG(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["serving", "lambda"],
    # Params keep their JSON types in templates: the records reach the operator as a list.
    render_template_as_native_obj=True,
    default_args=default_args(),
    params={
        "records": Param(
            EXAMPLE_RECORDS,
            type="array",
            minItems=1,
            items={"type": "object", "minProperties": 1},
            title="Records",
            description="A JSON array of one or more objects, one per client, with the dataset spec's "
            "feature fields (as in the example)",
        ),
        "records_uri": optional_param(
            "Records URI",
            "JSON Lines (or a JSON array) in storage, for batches over Lambda's 6 MB request limit; "
            "when given, it is used instead of the records",
        ),
        "model": model_param("the model of Variable ml_spec_uri's spec (the example records are the bank's)"),
        "storage_root": storage_root_param(),
    },
) as dag:

    @task
    def locate(params: dict[str, Any], var: dict[str, Any], run_id: str) -> dict[str, Any]:
        """The model's function, and where this run's response (and a batch's predictions) are
        stored: keyed by run id."""
        root = storage_root(params, var)
        check_locations(var, storage_root=root, records_uri=params["records_uri"])
        function = spot_function(var, model_name(params, var))
        folder = f"{root}/predictions/spot/{re.sub(r'[^A-Za-z0-9._-]', '_', run_id)}"
        return {
            "function": function,
            "response_uri": f"{folder}/response.json",
            "output_uri": f"{folder}/predictions.jsonl",
        }

    where = locate()
    SpotPredictionOperator(
        task_id="predict",
        function_name="{{ ti.xcom_pull(task_ids='locate')['function'] }}",
        qualifier=ALIAS,
        records="{{ params.records }}",
        records_uri="{{ params.records_uri }}",
        output_uri="{{ ti.xcom_pull(task_ids='locate')['output_uri'] }}",
        response_uri="{{ ti.xcom_pull(task_ids='locate')['response_uri'] }}",
        # A retry would invoke the function again; a failed prediction is for the person to read.
        retries=0,
    ).set_upstream(where)
