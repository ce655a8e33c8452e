"""The DAGs chain through the champion Asset: nightly_training updates it, batch_scoring follows."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from scaling_platform.assets import CHAMPION, nights_by_model, run_date

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


def _event(model, date):
    return SimpleNamespace(extra={"date": date, "model": model, "champion": f"nightly-{date}"})


def test_scoring_scores_the_night_and_the_model_that_triggered_it():
    events = {CHAMPION: [_event("penguins", "2026-11-19"), _event("penguins", "2026-11-20")]}
    events[CHAMPION].append(_event("bank-marketing", "2026-11-18"))
    # Several models' nights queued up: each model once, for its latest night.
    assert nights_by_model(events) == {"bank-marketing": "2026-11-18", "penguins": "2026-11-20"}
    assert nights_by_model({}) == {} and nights_by_model(None) == {}
    run = SimpleNamespace(logical_date=None, run_after=dt.datetime(2026, 11, 21, 2, 40, tzinfo=dt.UTC))
    assert run_date(run) == "2026-11-21"  # a manual run without a logical date
    manual = SimpleNamespace(logical_date=dt.datetime(2026, 11, 19, tzinfo=dt.UTC), run_after=run.run_after)
    assert run_date(manual) == "2026-11-19"


def _plan(dags, events=None, **params):
    plan = dags["batch_scoring"].get_task("plan").python_callable
    run = SimpleNamespace(logical_date=dt.datetime(2026, 11, 20, tzinfo=dt.UTC), run_after=None)
    params = dict(dags["batch_scoring"].params) | {"storage_root": "s3://bucket/ml/"} | params
    return plan(
        params=params, var={"value": {}}, dag_run=run, triggering_asset_events=events or {}, run_id="r1"
    )


def test_the_plan_uses_the_jobs_partition_layout(dags):
    """The DAG's plan (spark_jobs.interface) names the places the job itself reads and writes."""
    from spark_jobs.data.partitions import MARKER, input_uri, output_uri

    (where,) = _plan(dags)
    # No event and no model Param: the model of the deployment's spec.
    assert where["model"] == "bank-marketing" and where["run_id"] == "r1"
    assert where["input_uri"] == input_uri("s3://bucket/ml", "bank-marketing", "2026-11-20")
    assert where["ready_uri"] == f"{where['input_uri']}/{MARKER}"
    assert where["output_uri"] == output_uri("s3://bucket/ml", "bank-marketing", "2026-11-20")


def test_the_plan_scores_each_model_the_events_name(dags):
    events = {CHAMPION: [_event("penguins", "2026-11-19"), _event("bank-marketing", "2026-11-18")]}
    assert [(w["model"], w["date"]) for w in _plan(dags, events)] == [
        ("bank-marketing", "2026-11-18"),
        ("penguins", "2026-11-19"),
    ]
    # The model Param picks one of them (and its night).
    (chosen,) = _plan(dags, events, model="penguins")
    assert (chosen["model"], chosen["date"]) == ("penguins", "2026-11-19")
    with pytest.raises(AirflowFailException, match="give the model too"):
        _plan(dags, events, model_version="20261119T020000Z-abcdef")
