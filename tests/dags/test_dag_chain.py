"""The DAGs chain through the champion Asset: nightly_training updates it, batch_scoring follows."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from scaling_platform.assets import CHAMPION, night_scored

from tests.dags.test_dag_integrity import ROOT


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags")).dags


def test_training_publishes_the_champion_and_scoring_follows_it(dags):
    publish = dags["nightly_training"].get_task("publish_champion")
    assert CHAMPION in publish.outlets
    assert dags["batch_scoring"].timetable.asset_condition == CHAMPION
    assert publish.upstream_task_ids == {"promote"}  # not behind the Lambda release


def test_scoring_scores_the_night_that_triggered_it():
    run = SimpleNamespace(logical_date=None, run_after=dt.datetime(2026, 11, 21, 2, 40, tzinfo=dt.UTC))
    event = SimpleNamespace(extra={"date": "2026-11-20", "champion": "nightly-20261120"})
    assert night_scored(run, {CHAMPION: [event]}) == "2026-11-20"
    assert night_scored(run, {}) == "2026-11-21"  # a manual run without a logical date
    manual = SimpleNamespace(logical_date=dt.datetime(2026, 11, 19, tzinfo=dt.UTC), run_after=run.run_after)
    assert night_scored(manual, None) == "2026-11-19"


def test_the_plan_uses_the_jobs_partition_layout(dags):
    """The DAG cannot import spark_jobs; its plan must still name the places the job reads and writes."""
    from spark_jobs.partitions import MARKER, input_uri, output_uri

    plan = dags["batch_scoring"].get_task("plan").python_callable
    run = SimpleNamespace(logical_date=dt.datetime(2026, 11, 20, tzinfo=dt.UTC), run_after=None)
    params = dict(dags["batch_scoring"].params) | {"storage_root": "s3://bucket/ml/"}
    where = plan(params=params, var={"value": {}}, dag_run=run, triggering_asset_events={})
    assert where["input_uri"] == input_uri("s3://bucket/ml", "bank-marketing", "2026-11-20")
    assert where["ready_uri"] == f"{where['input_uri']}/{MARKER}"
    assert where["output_uri"] == output_uri("s3://bucket/ml", "bank-marketing", "2026-11-20")
