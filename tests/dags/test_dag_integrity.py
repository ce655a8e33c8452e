"""Every DAG imports cleanly and carries what operators of this project rely on."""

from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path

import pytest
from scaling_platform.notifications import FailureNotifier

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")

HEAVY = {"pyspark", "pandas", "sklearn", "boto3", "numpy", "kubernetes"}
# Tasks that must not retry: a retry would invoke the function again for a person waiting on it.
NO_RETRY = {("spot_predictions", "predict")}
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {Path(f).stem for f in map(str, DAG_FILES)} <= set(dagbag.dag_ids)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_policy(dagbag, path):
    dag = dagbag.dags.get(path.stem)
    assert dag is not None, f"{path.name} must define dag_id == its file stem"
    assert dag.doc_md and dag.tags
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", task.task_id
        assert (task.retries == 0) == ((dag.dag_id, task.task_id) in NO_RETRY), task.task_id
        callbacks = (
            task.on_failure_callback
            if isinstance(task.on_failure_callback, list)
            else [task.on_failure_callback]
        )
        assert any(isinstance(c, FailureNotifier) for c in callbacks), task.task_id


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_the_trigger_form_triggers_with_the_defaults(dagbag, path):
    """The UI's form calls a Param required unless its type allows null: one that may be left empty
    must allow it, or the form opens with Trigger disabled. The defaults themselves must validate."""
    params = dagbag.dags[path.stem].params
    for name in params:
        param = params.get_param(name)
        if param.value in (None, ""):
            assert "null" in param.schema.get("type", []), f"{name} may be left empty but is required"
        assert param.schema.get("title") and param.description, f"{name}: the form shows both"
    params.validate()


@pytest.mark.parametrize(
    "path", [*DAG_FILES, *sorted((ROOT / "plugins").rglob("*.py"))], ids=lambda p: p.name
)
def test_no_heavy_module_level_imports(path):
    """DAG files are parsed continuously; pyspark, pandas, sklearn, boto3 only inside tasks."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        assert not {n.split(".")[0] for n in names} & HEAVY, f"{path.name}: {names}"


def test_each_dag_runs_when_its_users_expect(dagbag):
    """Training nightly at 02:00, scoring when a new champion is published (and on demand), spot
    predictions only on demand: a DAG given another schedule by mistake fails here."""
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable
    from airflow.sdk.definitions.timetables.simple import NullTimetable
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable
    from scaling_platform.assets import CHAMPION

    nightly = dagbag.dags["nightly_training"].timetable
    assert isinstance(nightly, CronTriggerTimetable) and nightly.expression == "0 2 * * *"
    scoring = dagbag.dags["batch_scoring"].timetable
    assert isinstance(scoring, AssetTriggeredTimetable) and scoring.asset_condition == CHAMPION
    assert isinstance(dagbag.dags["spot_predictions"].timetable, NullTimetable)
