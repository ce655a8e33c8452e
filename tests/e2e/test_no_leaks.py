"""Nothing leaked: a secret planted in the worker's environment and in a file inside the storage
root reaches no task log, no error message and no failure webhook, whatever hostile location a
run is given; each run fails at its first step with the rule it broke."""

from __future__ import annotations

import json
import uuid

import pytest
from scaling_platform.lambda_release import FunctionSettings, release_model

from local_cloud.airflow.offline import LAMBDA_ROLE, airflow_env, dags_test, migrate
from local_cloud.process import running_emulator
from local_cloud.server import client, role_arn
from tests.conftest import BANK, BANK_FUNCTION
from tests.e2e.conftest import TRAINED_VERSION, copy_of

pytestmark = [pytest.mark.spark, pytest.mark.emulator, pytest.mark.airflow]
SECRET = f"sekrit-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def planted(tmp_path_factory, trained_storage):
    """The offline deployment, with the secret in the workers' environment and in a token file
    under the storage root (where a run may read), and the failure webhook configured."""
    work = tmp_path_factory.mktemp("leaks")
    root = copy_of(trained_storage, work)
    token = root / "incoming" / "token.txt"
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text(f"ML_PLANTED_SECRET={SECRET}\nsecond line {SECRET}\n")
    # A local-folder storage root: only host processes see it (a container would not).
    with running_emulator(work, buckets=["logs"], roles=[LAMBDA_ROLE], pod_runtime="process") as endpoint:
        settings = FunctionSettings(name=BANK_FUNCTION, role_arn=role_arn(LAMBDA_ROLE))
        release_model(client(endpoint, "lambda"), settings, str(root), "bank-marketing", TRAINED_VERSION)
        env = airflow_env(work / "home", endpoint, root, BANK, "logs") | {"ML_PLANTED_SECRET": SECRET}
        migrate(env)
        yield env, work, token


HOSTILE = [
    ("nightly_training", {"input_uri": "/proc/self/environ"}, "resolve", "/proc is a system folder"),
    ("nightly_training", {"input_uri": "{token}"}, "validate_input", "missing column(s)"),
    ("spot_predictions", {"records_uri": "file:///proc/self/environ"}, "locate", "/proc is a system folder"),
    ("spot_predictions", {"records_uri": "{token}"}, "predict", "neither a JSON array nor JSON Lines"),
    (
        "batch_scoring",
        {"input_uri": "{token}", "date": "2026-11-20", "if_input_missing": "fail"},
        "shard",  # the plan reads the header, before any pod
        "missing column(s)",
    ),
]


@pytest.mark.parametrize(
    ("dag_id", "conf", "failed_task", "rule"), HOSTILE, ids=[f"{d}-{t}" for d, _, t, _ in HOSTILE]
)
def test_a_hostile_location_fails_with_its_rule_and_leaks_nothing(
    planted, webhook, dag_id, conf, failed_task, rule
):
    env, work, token = planted
    url, received = webhook
    env = env | {"AIRFLOW_CONN_ML_ALERTS_WEBHOOK": json.dumps({"conn_type": "http", "host": f"{url}/alerts"})}
    conf = {k: v.format(token=token) if isinstance(v, str) else v for k, v in conf.items()}

    code, output, states = dags_test(env, dag_id, conf, "2026-11-20")

    assert code != 0 and states[failed_task] == "failed", (states, output[-3000:])
    assert rule in output, output[-3000:]
    assert received and all(body["task_id"] == failed_task for _, body in received), received
    seen = {"airflow dags test output": output, "webhook": json.dumps(received)}
    for path in (work / "home" / "logs").rglob("*"):
        if path.is_file():
            seen[str(path)] = path.read_text(errors="replace")
    for path in [work / "emulator.log", *(work / "pods").rglob("*.log"), *(work / "lambda").rglob("*.log")]:
        if path.is_file():
            seen[str(path)] = path.read_text(errors="replace")
    leaked = [where for where, text in seen.items() if SECRET in text]
    assert leaked == [], leaked
