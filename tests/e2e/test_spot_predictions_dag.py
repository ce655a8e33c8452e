"""`airflow dags test spot_predictions` offline: the provider's Lambda operator, the emulator's
Lambda, the real handler and a real trained champion; and the release that moves the alias."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from scaling_platform.jobs import smoke_check
from scaling_platform.lambda_release import (
    FunctionSettings,
    ReleaseFailed,
    model_environment,
    release,
    release_model,
)

from local_cloud.airflow.offline import LAMBDA_ROLE, airflow_env, dags_test, migrate
from local_cloud.aws.validation import read_journal
from local_cloud.process import running_emulator
from local_cloud.server import client, role_arn
from spark_jobs import storage
from spark_jobs.registry.store import PORTABLE, SPARK_MODEL, Registry
from spark_jobs.shipping import lambda_package
from tests.conftest import BANK, BANK_FUNCTION, bank_records
from tests.e2e.conftest import TRAINED_VERSION, copy_of

pytestmark = [pytest.mark.spark, pytest.mark.emulator, pytest.mark.airflow]
DAG_ID = "spot_predictions"
VERSION = TRAINED_VERSION


SETTINGS = FunctionSettings(name=BANK_FUNCTION, role_arn=role_arn(LAMBDA_ROLE))


@pytest.fixture(scope="module")
def offline(tmp_path_factory, trained_storage):
    work = tmp_path_factory.mktemp("spot")
    root = str(copy_of(trained_storage, work))
    with running_emulator(work, buckets=["logs"], roles=[LAMBDA_ROLE]) as endpoint:
        lam = client(endpoint, "lambda")
        assert release_model(lam, SETTINGS, root, "bank-marketing", VERSION)["version"] == "1"
        env = airflow_env(work / "home", endpoint, work / "storage", BANK, "logs")
        migrate(env)
        yield env, lam, work


def _responses(work):
    return sorted((work / "storage" / "predictions" / "spot").glob("*/response.json"))


def test_predictions_come_from_the_champion_through_lambda_and_match_spark(offline, spark, bank_spec):
    from pyspark.ml import PipelineModel

    from spark_jobs.training.features import with_positive_probability

    env, _, work = offline
    records = bank_records(5, start=100)
    code, output, states = dags_test(env, DAG_ID, {"records": records}, "2026-11-24")

    assert code == 0, output[-4000:]
    assert states == {"locate": "success", "predict": "success"}
    assert "The last 4 KB of the function's log" in output and "END RequestId" in output
    [stored] = _responses(work)
    answer = json.loads(stored.read_text())
    assert answer["model_version"] == VERSION and answer["count"] == 5

    # The same records through the Spark model that training saved.
    registry = Registry(str(work / "storage"), "bank-marketing")
    model = PipelineModel.load(storage.spark_uri(storage.join(registry.version_uri(VERSION), SPARK_MODEL)))
    schema = ", ".join(
        f"{n} {'int' if bank_spec.columns[n].type == 'integer' else 'string'}" for n in records[0]
    )
    frame = spark.createDataFrame([tuple(r.values()) for r in records], schema=schema)
    expected = [row.p_positive for row in with_positive_probability(model.transform(frame)).collect()]
    got = [p["probability"] for p in answer["predictions"]]
    assert got == pytest.approx(expected, abs=1e-9)


def test_a_bad_record_fails_the_task_once_with_the_functions_message(offline):
    env, _, work = offline
    records = bank_records(2)
    del records[1]["age"]
    journal = work / "requests.jsonl"
    invokes_before = sum(r["operation"] == "Invoke" for r in read_journal(journal))

    code, output, states = dags_test(env, DAG_ID, {"records": records}, "2026-11-25")

    assert code != 0
    assert states["predict"] == "failed"
    assert "failed: InvalidInputError: 1 problem(s) in the records: record 1: missing field 'age'" in output
    assert "The last 4 KB of the function's log" in output
    # One invocation: no client retry, no task retry.
    assert sum(r["operation"] == "Invoke" for r in read_journal(journal)) == invokes_before + 1


def test_a_batch_in_storage_is_scored_into_storage(offline):
    env, _, work = offline
    source = work / "storage" / "inbox" / "batch.jsonl"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("".join(json.dumps(r) + "\n" for r in bank_records(300)))
    before = _responses(work)

    code, output, states = dags_test(env, DAG_ID, {"records_uri": str(source)}, "2026-11-26")

    assert code == 0, output[-4000:]
    [folder] = [p.parent for p in _responses(work) if p not in before]
    summary = json.loads((folder / "response.json").read_text())
    assert summary["count"] == 300 and summary["output_uri"] == str(folder / "predictions.jsonl")
    assert len((folder / "predictions.jsonl").read_text().splitlines()) == 300


def test_an_invalid_run_configuration_is_refused_before_invoking(offline):
    env, _, _ = offline
    code, output, states = dags_test(env, DAG_ID, {"records": "age=30"}, "2026-11-27")
    assert code != 0
    assert "Invalid input for param records" in output
    assert states == {}


def test_a_release_whose_new_version_fails_its_check_leaves_the_alias(offline):
    _, lam, work = offline
    root = str(work / "storage")
    registry = Registry(root, "bank-marketing")
    # A second version whose portable model no longer matches its checksum.
    shutil.copytree(registry.version_uri(VERSION), registry.version_uri("spot-e2e-2"))
    manifest_path = os.path.join(registry.version_uri("spot-e2e-2"), "manifest.json")
    manifest = json.loads(open(manifest_path).read()) | {"version": "spot-e2e-2"}
    storage.write_bytes(manifest_path, json.dumps(manifest).encode())
    model_path = storage.join(registry.version_uri("spot-e2e-2"), PORTABLE)
    storage.write_bytes(
        model_path, storage.read_bytes(model_path).replace(b'"intercept"', b'"intercept" ', 1)
    )
    alias_before = lam.get_alias(FunctionName=BANK_FUNCTION, Name="live")["FunctionVersion"]

    # The smoke request is computed from the intact first version, so only the function fails.
    smoke = smoke_check(root, "bank-marketing", VERSION).model_dump()
    smoke["expected"]["model_version"] = "spot-e2e-2"
    env = model_environment(root, "bank-marketing", "spot-e2e-2")
    with pytest.raises(ReleaseFailed, match="failed its check, the alias was not moved.*is corrupt"):
        release(lam, SETTINGS, lambda_package.ship(root), env, smoke)

    assert lam.get_alias(FunctionName=BANK_FUNCTION, Name="live")["FunctionVersion"] == alias_before
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=BANK_FUNCTION)["Versions"]]
    assert len(versions) > 2  # the failed version was published, just never made live
    live = json.loads(
        lam.invoke(
            FunctionName=BANK_FUNCTION, Qualifier="live", Payload=json.dumps({"records": bank_records(1)})
        )["Payload"].read()
    )
    assert live["model_version"] == VERSION
