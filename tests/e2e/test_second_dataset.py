"""A second real dataset through all three DAGs offline, next to the bank model in one storage
root, with nothing but its spec: Palmer penguins (data/penguins), then a copy of it whose column
names hold dots and spaces."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from local_cloud.airflow.offline import LAMBDA_ROLE, airflow_env, dags_test, migrate
from local_cloud.process import running_emulator
from local_cloud.run import example_records
from local_cloud.server import client
from spark_jobs import storage
from spark_jobs.data import sample_input
from spark_jobs.data.partitions import output_uri
from spark_jobs.registry.store import Registry
from spark_jobs.spec import load_spec
from tests.conftest import BANK, PENGUINS, PENGUINS_SPEC
from tests.e2e.conftest import EMR_TASKS, TRAINED_VERSION, copy_of

pytestmark = [pytest.mark.spark, pytest.mark.emulator, pytest.mark.airflow]
NIGHT = "2026-11-20"
# The dotted copy: each renamed column is mapped back to its feature name by `source`.
DOTTED = {
    "species": "Species.Name",
    "bill_length_mm": "bill.length (mm)",
    "flipper_length_mm": "flipper length.mm",
    "body_mass_g": "Body Mass (g)",
}


@pytest.fixture(scope="module")
def offline(tmp_path_factory, trained_storage):
    """The deployment's dataset is the bank's (its Variables, its champion in the storage root)."""
    work = tmp_path_factory.mktemp("second")
    root = copy_of(trained_storage, work)
    # A local-folder storage root: only host processes see it (a container would not).
    with running_emulator(work, buckets=["logs"], roles=[LAMBDA_ROLE], pod_runtime="process") as endpoint:
        env = airflow_env(work / "home", endpoint, root, BANK, "logs")
        migrate(env)
        yield env, endpoint, root


def _run(env, dag_id, conf):
    code, output, states = dags_test(env, dag_id, conf, NIGHT)
    assert code == 0, output[-4000:]
    # Everything succeeded but batch_scoring's road not taken (EMR; the pods are the default).
    skipped = {task for task, state in states.items() if state == "skipped"}
    assert set(states.values()) <= {"success", "skipped"} and skipped <= set(EMR_TASKS), states
    return output


def _through_the_dags(offline, spec_file, data):
    """Train, gate and release `data` with its spec; score a day of it; ask its function about two
    of its records. Returns the model's name."""
    env, endpoint, root = offline
    spec = load_spec(str(spec_file))
    _run(env, "nightly_training", {"spec": str(spec_file), "input_uri": str(data)})

    registry = Registry(str(root), spec.name)
    assert registry.champion()["version"] == f"nightly-{NIGHT.replace('-', '')}"
    decision = json.loads(storage.read_bytes(registry.decision_uri(registry.champion()["version"])))
    # The spec's own gate: no Param was given, so nothing of the bank's or the Params' defaults.
    assert decision["gate"] == {
        "thresholds": dict(spec.gate.thresholds),
        "primary_metric": spec.gate.primary_metric,
        "tolerance": spec.gate.tolerance,
        "max_psi": spec.gate.drift.max_psi,
        "max_unseen_share": spec.gate.drift.max_unseen_share,
    }
    lam = client(endpoint, "lambda")
    function = f"ml-scaling-spot-predictions-{spec.name}"
    live = lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"]
    config = lam.get_function_configuration(FunctionName=function, Qualifier=live)
    assert config["Environment"]["Variables"]["ML_MODEL_NAME"] == spec.name

    sample_input.cut(str(data), spec, str(root), NIGHT, 120, "csv")
    _run(env, "batch_scoring", {"model": spec.name, "date": NIGHT})
    summary = json.loads(storage.read_bytes(f"{output_uri(str(root), spec.name, NIGHT)}/_summary.json"))
    assert (summary["model"], summary["model_version"]) == (spec.name, registry.champion()["version"])
    assert (summary["rows_in"], summary["rows_scored"], summary["rows_rejected"]) == (120, 120, 0)

    records = example_records(data, spec_file)
    assert set(records[0]) == set(spec.features)  # the spec's names, whatever the data calls them
    output = _run(env, "spot_predictions", {"model": spec.name, "records": records})
    assert f"{function}" in output
    (response,) = (root / "predictions" / "spot").glob("*/response.json")
    answer = json.loads(response.read_text())
    response.unlink()
    assert (answer["model"], answer["count"]) == (spec.name, 2)
    assert all(0 <= p["probability"] <= 1 and p["label"] in ("female", "male") for p in answer["predictions"])
    return spec.name


def test_penguins_train_score_and_answer_next_to_the_bank_model(offline):
    env, endpoint, root = offline
    bank_before = Registry(str(root), "bank-marketing").versions()

    assert _through_the_dags(offline, PENGUINS_SPEC, PENGUINS) == "penguins"

    # The bank model is as it was: its registry untouched, no function of its own released.
    bank = Registry(str(root), "bank-marketing")
    assert bank.versions() == bank_before and bank.champion()["version"] == TRAINED_VERSION
    functions = {f["FunctionName"] for f in client(endpoint, "lambda").list_functions()["Functions"]}
    assert functions == {"ml-scaling-spot-predictions-penguins"}


def test_a_copy_with_dots_and_spaces_in_its_column_names_runs_the_same_way(offline):
    env, endpoint, root = offline
    folder = root / "datasets"
    folder.mkdir()
    with PENGUINS.open(newline="") as src, (folder / "penguins-dotted.csv").open("w", newline="") as dst:
        rows = csv.reader(src)
        writer = csv.writer(dst, lineterminator="\n")
        writer.writerow([DOTTED.get(name, name) for name in next(rows)])
        writer.writerows(rows)
    spec = yaml.safe_load(PENGUINS_SPEC.read_text()) | {"name": "penguins-dotted"}
    for name, source in DOTTED.items():
        spec["columns"][name]["source"] = source
    (folder / "penguins-dotted.yaml").write_text(yaml.safe_dump(spec))
    assert load_spec(str(folder / "penguins-dotted.yaml")).source("bill_length_mm") == "bill.length (mm)"

    assert _through_the_dags(offline, folder / "penguins-dotted.yaml", folder / "penguins-dotted.csv")
    assert Registry(str(root), "penguins").champion()["version"] == f"nightly-{NIGHT.replace('-', '')}"
