"""Spot predictions over HTTP: an API Gateway HTTP API (payload format 2.0) in front of the
function's `live` alias, served by the emulator, answering `curl` as API Gateway would."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import urllib.error
import urllib.request
import zipfile

import pytest

from local_cloud.aws import apigateway
from local_cloud.serve import ALIAS, FUNCTION_PREFIX, ROUTE, create_http_api
from local_cloud.server import client
from tests.conftest import bank_records, function_request, handmade_version

# Answers with the event it was given, or as the event's body asks (to see what API Gateway sent
# and what it makes of each kind of answer).
ECHO = """
import json

def handler(event, context):
    ask = json.loads(event.get("body") or "{}") if not event.get("isBase64Encoded") else {}
    if ask.get("fail"):
        raise RuntimeError("asked to fail")
    if ask.get("plain"):
        return {"plain": True}
    return {"statusCode": 201, "headers": {"X-Echo": "yes"}, "cookies": ["a=1"], "body": json.dumps(event)}
"""


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def _released(lam, code: bytes, env: dict | None = None, **settings) -> str:
    """A function with a published version behind the alias, as a release leaves it."""
    name = lam.create_function(**function_request(code, env, **settings))["FunctionName"]
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
    return name


def _api(emulator, function: str) -> str:
    """The route's URL, with the API made as `make serve` makes it."""
    api_id = create_http_api(client(emulator, "lambda"), client(emulator, "apigatewayv2"), function)
    return apigateway.url(emulator, api_id) + ROUTE.split(" ")[1]


def _post(url: str, body: bytes | None, content_type: str = "application/json", method: str = "POST"):
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def predict_url(emulator, spot_zip, tmp_path_factory):
    root = tmp_path_factory.mktemp("http-served") / "root"
    registry = handmade_version(root)
    lam = client(emulator, "lambda")
    name = _released(lam, spot_zip, {"ML_STORAGE_ROOT": str(root), "ML_MODEL_NAME": registry.model})
    return _api(emulator, name), lam, name


def test_curl_gets_the_champions_prediction_the_same_as_a_direct_invocation(predict_url):
    url, lam, name = predict_url
    records = bank_records(2)
    body = json.dumps({"records": records})
    curl = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            "-w",
            "\n%{http_code}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer, _, status = curl.stdout.rpartition("\n")
    assert status == "200", curl.stdout
    direct = json.loads(lam.invoke(FunctionName=name, Qualifier=ALIAS, Payload=body)["Payload"].read())
    assert json.loads(answer) == direct and direct["count"] == 2 and direct["model_version"] == "v1"


def test_bad_input_is_a_400_with_the_handlers_reason(predict_url):
    url, _, _ = predict_url
    status, headers, body = _post(url, json.dumps({"records": [{"age": 30}]}).encode())
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert "record 0: missing field 'job'" in json.loads(body)["error"]
    status, _, body = _post(url, None)  # no body at all
    assert status == 400 and json.loads(body)["type"] == "InvalidInputError"
    status, _, body = _post(url, b"age=30", "application/x-www-form-urlencoded")
    assert status == 400 and "must be JSON" in json.loads(body)["error"]


def test_no_champion_yet_is_a_503(emulator, spot_zip, tmp_path):
    handmade_version(tmp_path / "root", promote=False)
    lam = client(emulator, "lambda")
    name = _released(
        lam, spot_zip, {"ML_STORAGE_ROOT": str(tmp_path / "root"), "ML_MODEL_NAME": "bank-marketing"}
    )
    status, _, body = _post(_api(emulator, name), json.dumps({"records": bank_records(1)}).encode())
    assert status == 503 and json.loads(body)["type"] == "NoChampionError"


def test_the_event_is_payload_format_2_and_the_answer_is_mapped_as_api_gateway_maps_it(emulator):
    lam = client(emulator, "lambda")
    url = _api(emulator, _released(lam, _zip(ECHO), handler="app.handler"))
    status, headers, body = _post(
        url + "?model=bank%20marketing&x=1&x=2", json.dumps({"hello": "é"}).encode()
    )
    assert status == 201 and headers["X-Echo"] == "yes" and headers["Set-Cookie"] == "a=1"
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "POST /predict"
    assert event["rawPath"] == "/predict" and event["rawQueryString"] == "model=bank%20marketing&x=1&x=2"
    assert event["queryStringParameters"] == {"model": "bank marketing", "x": "1,2"}
    assert event["headers"]["content-type"] == "application/json"
    assert event["isBase64Encoded"] is False and json.loads(event["body"]) == {"hello": "é"}
    context = event["requestContext"]
    assert context["http"]["method"] == "POST" and context["http"]["path"] == "/predict"
    assert context["stage"] == "$default" and context["routeKey"] == "POST /predict"
    assert context["apiId"] in url and context["domainName"].startswith(context["apiId"] + ".execute-api.")

    # A body that is not text arrives base64-encoded.
    status, _, body = _post(url, b"\x00\xff", "application/octet-stream")
    event = json.loads(body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x00\xff"
    # ... and so does one that says it is JSON but is not UTF-8.
    status, _, body = _post(url, b"\xe4", "application/json")
    assert json.loads(body)["isBase64Encoded"] is True
    # An answer without statusCode is the body of a 200; a function error is API Gateway's 500.
    status, headers, body = _post(url, json.dumps({"plain": True}).encode())
    assert (status, json.loads(body)) == (200, {"plain": True}) and headers[
        "Content-Type"
    ] == "application/json"
    status, _, body = _post(url, json.dumps({"fail": True}).encode())
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_no_api_stage_or_route_is_api_gateways_404(emulator, predict_url):
    url, _, _ = predict_url
    for wrong in (url.replace("/predict", "/score"), url.replace(apigateway.PREFIX, apigateway.PREFIX + "x")):
        status, _, body = _post(wrong, b"{}")
        assert (status, json.loads(body)) == (404, {"message": "Not Found"}), wrong
    status, _, body = _post(url, None, method="GET")  # the route is POST only
    assert status == 404


def test_the_function_name_is_the_one_releases_use():
    from scaling_platform import lambda_release

    assert (FUNCTION_PREFIX, ALIAS) == (lambda_release.FUNCTION_PREFIX, lambda_release.ALIAS)
