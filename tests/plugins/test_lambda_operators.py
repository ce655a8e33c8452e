"""The spot-prediction operator refuses what Lambda would refuse, before it invokes anything."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from scaling_platform.lambda_operators import (
    MAX_SYNC_PAYLOAD,
    ONE_ATTEMPT_CLIENT,
    SpotPredictionOperator,
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


def test_the_client_makes_one_attempt_and_outwaits_the_longest_function():
    operator = _operator(records=[{"a": 1}])
    assert operator.botocore_config == ONE_ATTEMPT_CLIENT
    assert ONE_ATTEMPT_CLIENT["retries"] == {"total_max_attempts": 1}
    assert ONE_ATTEMPT_CLIENT["read_timeout"] > 15 * 60  # Lambda's maximum timeout
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
