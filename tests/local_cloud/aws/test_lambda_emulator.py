"""The emulator's Lambda: the real handler through awslambdaric, with Lambda's answers and limits."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import botocore.config
import pytest
from botocore.exceptions import ClientError

from local_cloud.airflow.offline import LAMBDA_ROLE
from local_cloud.aws.validation import read_journal
from local_cloud.process import running_emulator
from local_cloud.server import client
from spark_jobs.shipping.lambda_package import code_sha256
from tests.conftest import bank_records, function_request, handmade_version

NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=120)


def _lambda(endpoint, **kwargs):
    return client(endpoint, "lambda", config=NO_RETRIES, **kwargs)


def _create(lam, code: bytes, env: dict | None = None, **settings) -> str:
    return lam.create_function(**function_request(code, env, **settings))["FunctionName"]


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


@pytest.fixture(scope="module")
def spot(emulator, spot_zip, tmp_path_factory):
    root = tmp_path_factory.mktemp("served") / "root"
    registry = handmade_version(root)
    lam = _lambda(emulator)
    name = _create(lam, spot_zip, {"ML_STORAGE_ROOT": str(root), "ML_MODEL_NAME": registry.model})
    return lam, name


def _invoke(lam, name, event, **kwargs):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event), LogType="Tail", **kwargs)
    log = base64.b64decode(response["LogResult"]).decode()
    return response, json.loads(response["Payload"].read()), log


def test_the_real_handler_answers_through_the_runtime_client_in_a_warm_sandbox(spot):
    lam, name = spot
    response, body, log = _invoke(lam, name, {"records": bank_records(2)})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert body["count"] == 2 and body["model_version"] == "v1"
    # Lambda's log frame: START, the handler's own lines, END, REPORT (with an init time when cold).
    assert log.startswith("START RequestId:") and "END RequestId:" in log and "REPORT RequestId:" in log
    assert "loaded bank-marketing version v1" in log and "Init Duration" in log
    # The same sandbox again: no init, no second model load.
    _, _, warm = _invoke(lam, name, {"records": bank_records(1)})
    assert "Init Duration" not in warm and "loaded bank-marketing" not in warm


def test_bad_input_is_a_function_error_with_the_handlers_type_and_message(spot):
    lam, name = spot
    response, body, log = _invoke(lam, name, {"records": [{"age": 30}]})
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "InvalidInputError"
    assert "record 0: missing field 'job'" in body["errorMessage"]
    assert "InvalidInputError" in log


def test_a_request_over_six_megabytes_is_refused_before_the_function_runs(spot, emulator_journal):
    lam, name = spot
    records = bank_records(1) * 30_000  # about 11 MB of JSON
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=name, Payload=json.dumps({"records": records}))
    assert info.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_versions_and_aliases_route_to_their_own_configuration(spot, tmp_path):
    lam, name = spot
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
    other = handmade_version(tmp_path / "other", "v9")
    lam.update_function_configuration(
        FunctionName=name,
        Environment={"Variables": {"ML_STORAGE_ROOT": other.root, "ML_MODEL_NAME": other.model}},
    )
    v2 = lam.publish_version(FunctionName=name)["Version"]
    assert (v1, v2) == ("1", "2")
    response, body, _ = _invoke(lam, name, {"records": bank_records(1)}, Qualifier="live")
    assert (response["ExecutedVersion"], body["model_version"]) == ("1", "v1")
    response, body, _ = _invoke(lam, name, {"records": bank_records(1)}, Qualifier=v2)
    assert (response["ExecutedVersion"], body["model_version"]) == ("2", "v9")


def test_unknown_function_is_a_404(emulator):
    with pytest.raises(ClientError) as info:
        _lambda(emulator).invoke(FunctionName="nope", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_function_only_sees_its_own_code_and_the_runtime(emulator):
    lam = _lambda(emulator)
    source = "import pyspark\n\ndef handler(event, context):\n    return 1\n"
    name = _create(lam, _zip(source), handler="app.handler")
    response, body, _ = _invoke(lam, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'pyspark'" in body["errorMessage"]


def test_a_function_runs_on_its_runtimes_python(emulator):
    lam = _lambda(emulator)
    source = (
        "import os, sys\n\ndef handler(event, context):\n"
        "    return ['%d.%d' % sys.version_info[:2], os.environ['AWS_EXECUTION_ENV']]\n"
    )
    for runtime, version in (("python3.12", "3.12"), ("python3.11", "3.11")):  # 3.11: prepared now
        name = _create(lam, _zip(source), handler="app.handler", runtime=runtime)
        assert _invoke(lam, name, {})[1] == [version, f"AWS_Lambda_{runtime}"]
    # A runtime this machine cannot run is the emulator's failure, saying why, not the function's.
    name = _create(lam, _zip(source), handler="app.handler", runtime="python3.15")
    with pytest.raises(
        ClientError, match=r"python3\.15 runtime runs handlers on Python 3\.15, and none was found"
    ):
        lam.invoke(FunctionName=name, Payload=b"{}")


def test_a_function_past_its_timeout_is_stopped(emulator):
    lam = _lambda(emulator)
    source = "import time\n\ndef handler(event, context):\n    time.sleep(30)\n"
    name = _create(lam, _zip(source), handler="app.handler", timeout=1)
    response, body, _ = _invoke(lam, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 1.00 seconds"}
    # The next invocation gets a fresh sandbox and the same answer.
    assert _invoke(lam, name, {})[1]["errorType"] == "Sandbox.Timedout"


def test_lambda_requests_are_validated_against_botocores_model(emulator, emulator_journal, spot_zip):
    loose = client(emulator, "lambda", config=botocore.config.Config(parameter_validation=False))
    with pytest.raises(ClientError) as info:
        loose.create_function(**function_request(spot_zip, memory_size=1))  # Lambda's minimum is 128
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "MemorySize" in info.value.response["Error"]["Message"]
    invalid = [r for r in read_journal(emulator_journal) if r["error"]]
    assert invalid[-1]["operation"] == "CreateFunction" and invalid[-1]["service"] == "lambda"


def test_functions_versions_and_aliases_outlive_the_emulator(tmp_path, spot_zip):
    root = handmade_version(tmp_path / "root").root
    state = tmp_path / "state"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running_emulator(tmp_path / "a", [], [LAMBDA_ROLE], state_dir=state) as endpoint:
        lam = _lambda(endpoint)
        name = _create(lam, spot_zip, {"ML_STORAGE_ROOT": root, "ML_MODEL_NAME": "bank-marketing"})
        version = lam.publish_version(FunctionName=name)["Version"]
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    with running_emulator(tmp_path / "b", [], [LAMBDA_ROLE], state_dir=state) as endpoint:
        lam = _lambda(endpoint)
        assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == version
        assert lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == code_sha256(spot_zip)
        response, body, _ = _invoke(lam, name, {"records": bank_records(1)}, Qualifier="live")
        assert response["ExecutedVersion"] == version and body["model_version"] == "v1"
    # The code is stored once, not once per request.
    assert len(list((state / "blobs").iterdir())) == 1
