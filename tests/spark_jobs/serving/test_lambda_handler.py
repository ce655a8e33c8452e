"""The spot-predictions handler: direct and API Gateway events, bad input, the model loaded once."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_jobs import storage
from spark_jobs.errors import IntegrityError, InvalidInputError, NoChampionError
from spark_jobs.registry.portable import Scorer
from spark_jobs.registry.store import PORTABLE
from spark_jobs.serving import lambda_handler
from tests.conftest import ROOT, bank_records, handmade_version


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A registry with a champion, the function's environment pointing at it, a cold container."""
    registry = handmade_version(tmp_path / "root")
    monkeypatch.setenv("ML_STORAGE_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("ML_MODEL_NAME", registry.model)
    monkeypatch.delenv("ML_MODEL_VERSION", raising=False)
    monkeypatch.setattr(lambda_handler, "_PREDICTOR", None)
    return registry


def _api(body, **extra):
    return {"httpMethod": "POST", "path": "/predict", "requestContext": {}, "body": body} | extra


def test_direct_event_returns_probabilities_labels_and_the_model_version(served):
    records = bank_records(3)
    result = lambda_handler.handler({"records": records})
    scorer = Scorer(json.loads(served.read_verified("v1", PORTABLE)))
    assert result["model_version"] == "v1" and result["model"] == "bank-marketing"
    assert result["count"] == 3
    for record, prediction in zip(records, result["predictions"], strict=True):
        assert prediction["probability"] == scorer.probability(record)
        assert prediction["label"] == ("yes" if prediction["probability"] > 0.5 else "no")


def test_the_model_is_loaded_once_per_container(served):
    lambda_handler.handler({"records": bank_records(1)})
    storage.remove_tree(served.version_uri("v1"))  # gone from storage: the container still has it
    assert lambda_handler.handler({"records": bank_records(1)})["model_version"] == "v1"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("age"), "record 1: missing field 'age'"),
        (lambda r: r.update(age="thirty"), "record 1: age: expected a number, got string 'thirty'"),
        (lambda r: r.update(age=True), "record 1: age: expected a number, got boolean True"),
        (lambda r: r.update(balance=12.5), "record 1: balance: expected a whole number, got 12.5"),
        (lambda r: r.update(job=3), "record 1: job: expected a string, got number 3"),
        (lambda r: r.update(age=200), "record 1: age: 200 is above the maximum 130"),
        (lambda r: r.update(month=None), "record 1: month: is null"),
    ],
    ids=["missing-field", "wrong-type", "boolean", "fraction", "number-for-category", "out-of-range", "null"],
)
def test_a_bad_record_raises_a_typed_error_naming_record_and_field(served, edit, message):
    records = bank_records(2)
    edit(records[1])
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        lambda_handler.handler({"records": records})


def test_every_problem_is_reported_not_just_the_first(served):
    records = [{"age": "x"}, "not an object", {}]
    with pytest.raises(InvalidInputError) as info:
        lambda_handler.handler({"records": records})
    text = str(info.value)
    assert "record 0: age: expected a number" in text and "record 0: missing field 'job'" in text
    assert "record 1: expected an object, got string" in text
    # 16 + 1 + 16 problems: the first 20 are listed, then a count of the rest.
    assert text.startswith("33 problem(s)") and text.endswith("; and 13 more")


def test_an_unknown_category_still_predicts_as_spark_does(served):
    record = bank_records(1)[0] | {"job": "astronaut"}
    scorer = Scorer(json.loads(served.read_verified("v1", PORTABLE)))
    known = dict(record, job=scorer.doc["categorical"][0]["categories"][0])
    p = lambda_handler.handler({"records": [record]})["predictions"][0]["probability"]
    assert p == scorer.probability(record)
    # An unknown category contributes nothing (Spark's dropped one-hot bucket).
    weight = scorer.doc["categorical"][0]["weights"][0]
    assert scorer.margin(known) - scorer.margin(record) == pytest.approx(weight, abs=1e-12)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"records": []}, "non-empty array of objects, got an empty array"),
        ({"records": {"age": 1}}, "non-empty array of objects, got object"),
        ({"rows": []}, r"got the key\(s\) 'rows'$"),
        ([1, 2], "the event must be a JSON object"),
    ],
    ids=["empty-list", "not-a-list", "unknown-key", "not-an-object"],
)
def test_malformed_direct_events_are_refused(served, event, message):
    with pytest.raises(InvalidInputError, match=message):
        lambda_handler.handler(event)


def test_api_gateway_events_answer_200_or_400_with_a_clear_body(served):
    ok = lambda_handler.handler(_api(json.dumps({"records": bank_records(2)})))
    assert ok["statusCode"] == 200 and json.loads(ok["body"])["count"] == 2

    not_json = lambda_handler.handler(_api("age=30&job=admin"))
    assert not_json["statusCode"] == 400
    assert json.loads(not_json["body"]) == {
        "error": 'the request body must be JSON: {"records": [...]}',
        "type": "InvalidInputError",
    }
    bad = lambda_handler.handler(_api(json.dumps({"records": [{"age": 1}]})))
    assert bad["statusCode"] == 400 and "missing field 'job'" in json.loads(bad["body"])["error"]
    empty = lambda_handler.handler(_api(None))
    assert empty["statusCode"] == 400

    # HTTP API (payload 2.0) with a base64 body.
    body = base64.b64encode(json.dumps({"records": bank_records(1)}).encode()).decode()
    v2_event = {"version": "2.0", "routeKey": "POST /predict", "requestContext": {}, "isBase64Encoded": True}
    v2 = lambda_handler.handler(v2_event | {"body": body})
    assert v2["statusCode"] == 200
    # A request with no body: API Gateway sends no `body` key at all. Still a 400, not a crash.
    no_body = lambda_handler.handler(v2_event | {"isBase64Encoded": False})
    assert no_body["statusCode"] == 400 and json.loads(no_body["body"])["type"] == "InvalidInputError"


def test_no_champion_yet_is_a_typed_error_and_a_503(tmp_path, monkeypatch):
    handmade_version(tmp_path / "root", promote=False)
    monkeypatch.setenv("ML_STORAGE_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("ML_MODEL_NAME", "bank-marketing")
    monkeypatch.setattr(lambda_handler, "_PREDICTOR", None)
    with pytest.raises(NoChampionError, match="no champion yet"):
        lambda_handler.handler({"records": bank_records(1)})
    answer = lambda_handler.handler(_api(json.dumps({"records": bank_records(1)})))
    assert answer["statusCode"] == 503 and json.loads(answer["body"])["type"] == "NoChampionError"


def test_a_pinned_version_is_served_and_a_corrupt_model_is_refused(served, monkeypatch):
    handmade_version(served.root, "v2", promote=False)
    monkeypatch.setenv("ML_MODEL_VERSION", "v2")
    assert lambda_handler.handler({"records": bank_records(1)})["model_version"] == "v2"

    handmade_version(served.root, "v3", promote=False)
    path = storage.join(served.version_uri("v3"), PORTABLE)
    storage.write_bytes(path, storage.read_bytes(path).replace(b"-1.5", b"-2.5"))
    monkeypatch.setenv("ML_MODEL_VERSION", "v3")
    monkeypatch.setattr(lambda_handler, "_PREDICTOR", None)
    with pytest.raises(IntegrityError, match="is corrupt"):
        lambda_handler.handler({"records": bank_records(1)})


def test_a_batch_from_storage_is_written_as_json_lines(served, tmp_path):
    records = bank_records(25)
    inbox = tmp_path / "root" / "inbox"
    inbox.mkdir()
    source = inbox / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "root" / "out" / "predictions.jsonl"
    result = lambda_handler.handler({"records_uri": str(source), "output_uri": str(out)})
    assert result == {"model": "bank-marketing", "model_version": "v1", "count": 25, "output_uri": str(out)}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    inline = lambda_handler.handler({"records": records})["predictions"]
    assert lines == inline

    with pytest.raises(InvalidInputError, match="does not exist"):
        lambda_handler.handler({"records_uri": str(inbox / "nope.jsonl"), "output_uri": str(out)})
    for content, message in (
        (b"{not json\n", "neither a JSON array nor JSON Lines: Expecting property name"),
        ("{}\n".encode("utf-16"), "is not UTF-8 text"),
        (b"[" * 100_000, "nests JSON too deeply"),
    ):
        (inbox / "bad.jsonl").write_bytes(content)
        with pytest.raises(InvalidInputError, match=message):
            lambda_handler.handler({"records_uri": str(inbox / "bad.jsonl"), "output_uri": str(out)})


@pytest.mark.parametrize(
    ("where", "rule"),
    [
        ("/proc/self/environ", "/proc is a system folder"),
        ("file:///etc/passwd", "/etc is a system folder"),
        ("http://169.254.169.254/latest/meta-data", "do not fetch http:// URIs"),
        ("{root}/../secrets.jsonl", "'..' may not appear"),
        ("{tmp}/elsewhere.jsonl", "not under an allowed prefix"),
    ],
)
def test_a_batch_reads_and_writes_only_under_the_storage_root(served, tmp_path, where, rule):
    (tmp_path / "elsewhere.jsonl").write_text(json.dumps(bank_records(1)[0]) + "\n")
    uri = where.format(root=tmp_path / "root", tmp=tmp_path)
    out = str(tmp_path / "root" / "out.jsonl")
    with pytest.raises(InvalidInputError, match=rule):
        lambda_handler.handler({"records_uri": uri, "output_uri": out})
    with pytest.raises(InvalidInputError, match=rule):
        lambda_handler.handler({"records_uri": str(tmp_path / "root" / "in.jsonl"), "output_uri": uri})


def test_the_handler_imports_neither_spark_nor_the_numeric_stack():
    code = (
        "import sys\n"
        "for name in ('pyspark', 'pandas', 'numpy', 'sklearn', 's3fs', 'boto3'): sys.modules[name] = None\n"
        "import spark_jobs.serving.lambda_handler\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_an_s3_root_is_read_and_written_with_the_runtimes_boto3(s3_env, monkeypatch):
    from spark_jobs.serving import predict as serving

    root = "s3://registry/served"
    handmade_version(root)  # written with s3fs, as training writes
    monkeypatch.setattr(serving, "_S3_CLIENT", None)
    monkeypatch.setattr(lambda_handler, "_PREDICTOR", None)
    monkeypatch.setenv("ML_STORAGE_ROOT", root)
    monkeypatch.setenv("ML_MODEL_NAME", "bank-marketing")
    serving.write_object(
        f"{root}/inbox/in.jsonl", "".join(json.dumps(r) + "\n" for r in bank_records(4)).encode()
    )
    result = lambda_handler.handler(
        {"records_uri": f"{root}/inbox/in.jsonl", "output_uri": f"{root}/out.jsonl"}
    )
    assert result["count"] == 4 and result["model_version"] == "v1"
    assert len(serving.read_object(f"{root}/out.jsonl").splitlines()) == 4
    with pytest.raises(FileNotFoundError):
        serving.read_object(f"{root}/nothing-here")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (_api("not base64!", isBase64Encoded=True), "is marked base64 but is not valid base64"),
        (
            _api(base64.b64encode('{"records": []}'.encode("utf-16")).decode(), isBase64Encoded=True),
            "not UTF-8",
        ),
        (_api("[" * 100_000), "nests JSON too deeply"),
        (_api({"records": []}), "the request body must be text"),
    ],
    ids=["not-base64", "not-utf8", "deeply-nested", "body-not-text"],
)
def test_a_body_api_gateway_cannot_read_is_a_400(served, event, message):
    answer = lambda_handler.handler(event)
    assert answer["statusCode"] == 400 and message in json.loads(answer["body"])["error"]


def test_numbers_out_of_any_range_are_refused_and_messages_stay_short(served):
    record = bank_records(1)[0]
    for value, problem in ((10**400, "outside the range of a 32-bit integer"), ("9" * 5_000_000, "expected")):
        answer = lambda_handler.handler(_api(json.dumps({"records": [record | {"age": value}]})))
        error = json.loads(answer["body"])["error"]
        assert answer["statusCode"] == 400 and problem in error
        assert len(answer["body"]) < 1_000, len(answer["body"])


def test_a_value_far_outside_training_is_flagged_or_refused_as_the_spec_says(served, monkeypatch):
    from spark_jobs.spec import ServingSpec

    record = bank_records(1)[0] | {"balance": 2_000_000_000}
    [flagged] = lambda_handler.handler({"records": [record]})["predictions"]
    assert math.isfinite(flagged["probability"])
    # bank.csv's balances run from -3,313 to 71,188: the margin adds that span on each side.
    assert flagged["warnings"] == [
        "balance: 2000000000 is far outside the values seen in training (-77814 to 145689 with the margin)"
    ]
    assert "warnings" not in lambda_handler.handler({"records": bank_records(1)})["predictions"][0]

    predictor = lambda_handler.predictor()
    strict = predictor.spec.model_copy(update={"serving": ServingSpec(outside_training_range="refuse")})
    monkeypatch.setattr(lambda_handler, "_PREDICTOR", dataclasses.replace(predictor, spec=strict))
    with pytest.raises(InvalidInputError, match="record 0: balance: 2000000000 is far outside"):
        lambda_handler.handler({"records": [record]})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(st.sampled_from(sorted(bank_records(1)[0])), JSON_VALUES, max_size=4),
    drop=st.sets(st.sampled_from(sorted(bank_records(1)[0])), max_size=2),
    body=st.one_of(st.none(), st.text(max_size=40), JSON_VALUES.map(json.dumps)),
    encoded=st.booleans(),
)
def test_fuzzed_input_gets_a_typed_error_or_finite_probabilities(served, fields, drop, body, encoded):
    """Whatever a caller sends: InvalidInputError (direct) or a 400 (API Gateway), never a crash;
    and every answer holds finite probabilities."""
    record = {k: v for k, v in (bank_records(1)[0] | fields).items() if k not in drop}
    try:
        result = lambda_handler.handler({"records": [record]})
    except InvalidInputError as exc:
        assert len(str(exc)) < 3_000
    else:
        assert all(math.isfinite(p["probability"]) for p in result["predictions"])
    for text in (json.dumps({"records": [record]}), body):
        raw = text if text is None or not encoded else base64.b64encode(text.encode()).decode()
        answer = lambda_handler.handler(_api(raw, isBase64Encoded=encoded))
        assert answer["statusCode"] in (200, 400), answer
        if answer["statusCode"] == 200:
            assert all(math.isfinite(p["probability"]) for p in json.loads(answer["body"])["predictions"])
