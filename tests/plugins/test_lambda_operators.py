"""The spot-prediction operator refuses what Lambda would refuse, before it invokes anything."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from scaling_platform.lambda_operators import (
    MAX_SYNC_PAYLOAD,
    SpotPredictionOperator,
    prediction_table,
    spot_event,
)


def _operator(**kwargs):
    return SpotPredictionOperator(
        task_id="predict",
        function_name="fn",
        qualifier="live",
        output_uri="/tmp/out.jsonl",
        response_uri="/tmp/response.json",
        **kwargs,
    )


def test_a_request_over_lambdas_limit_is_refused_before_invoking(monkeypatch):
    record = {"age": 30, "job": "x" * 1000}
    operator = _operator(records=[record] * (MAX_SYNC_PAYLOAD // 1000))

    def no_invoke(*args, **kwargs):
        raise AssertionError("invoked")

    monkeypatch.setattr(type(operator), "hook", property(lambda self: no_invoke))
    with pytest.raises(
        AirflowFailException, match="over Lambda's synchronous limit.*pass records_uri instead"
    ):
        operator.execute({})


def test_the_client_makes_one_attempt_and_outwaits_the_longest_function(monkeypatch):
    """The boto3 client the operator's hook makes (no request is sent): a retried invoke would run
    the function twice, and a read timeout under Lambda's 15 minutes would cut a long one off."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    operator = _operator(records=[{"a": 1}], aws_conn_id=None)
    config = operator.hook.conn.meta.config
    assert config.retries["total_max_attempts"] == 1
    assert config.read_timeout > 15 * 60
    assert (operator.invocation_type, operator.log_type) == ("RequestResponse", "Tail")


def test_the_event_carries_the_records_or_the_uri_of_a_batch():
    assert spot_event([{"a": 1}], None, "out") == {"records": [{"a": 1}]}
    assert spot_event([{"a": 1}], "s3://b/in.jsonl", "out") == {
        "records_uri": "s3://b/in.jsonl",
        "output_uri": "out",
    }
    with pytest.raises(AirflowFailException, match="give the records"):
        spot_event([], None, "out")
    with pytest.raises(AirflowFailException, match="give the records"):
        spot_event(None, "", "out")


def test_the_predictions_end_the_task_log_as_a_table():
    answer = {
        "model": "bank-marketing",
        "model_version": "v7",
        "count": 23,
        "predictions": [{"label": "yes" if i % 5 == 0 else "no", "probability": i / 100} for i in range(23)],
    }
    lines = prediction_table(answer)
    assert lines[0] == "23 prediction(s), model bank-marketing v7:"
    assert lines[1].split() == ["record", "label", "probability"]
    assert [line.split() for line in lines[2:4]] == [["0", "yes", "0.0000"], ["1", "no", "0.0100"]]
    assert len(lines) == 2 + 20 + 1 and lines[-1] == "... and 3 more (all 23 in the stored response)"
    assert len(prediction_table(answer | {"predictions": answer["predictions"][:20]})) == 22


def test_a_batch_from_storage_says_where_its_predictions_went():
    answer = {"model": "m", "model_version": "v1", "count": 5000, "output_uri": "s3://b/p/predictions.jsonl"}
    assert prediction_table(answer) == [
        "5000 prediction(s), model m v1: written to s3://b/p/predictions.jsonl"
    ]
