"""The amazon provider's LambdaInvokeFunctionOperator, made safe for spot predictions.

Its users' known pains, and what this subclass does about each:
- Silent client retries invoke a function several times (boto3 issue 1104): the client makes
  exactly one attempt; its read timeout outlasts the function's (apache/airflow issue 41498).
- A request over Lambda's 6 MB synchronous limit fails inside AWS with a cryptic error: it is
  refused before invoking, with a message that says to pass a storage URI instead.
- The provider's operator logs the whole request payload and raises a bare ValueError on a
  FunctionError (which a retry repeats): here the request is logged by size, and a function
  error fails the task for good with the function's own error type and message, after the log
  tail.
- Large responses in XCom: the response is stored under the storage root keyed by run id; XCom
  gets a summary, with the predictions only when they are small.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.common.compat.sdk import AirflowFailException

from scaling_platform.storage_paths import storage_path, write_whole

if TYPE_CHECKING:
    from airflow.sdk import Context

# Lambda's limit on a synchronous invocation's request (and response) payload.
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
# Lambda's maximum function timeout is 15 minutes: the read timeout must outlast any invocation.
ONE_ATTEMPT_CLIENT = {"read_timeout": 960, "connect_timeout": 10, "retries": {"total_max_attempts": 1}}


def spot_event(records: Any, records_uri: str | None, output_uri: str) -> dict[str, Any]:
    """The function's event: the records inline, or (when given) the URI of a larger batch."""
    if records_uri:
        return {"records_uri": records_uri, "output_uri": output_uri}
    if not isinstance(records, list) or not records:
        raise AirflowFailException("give the records (a non-empty array of objects) or a records_uri")
    return {"records": records}


class SpotPredictionOperator(LambdaInvokeFunctionOperator):
    template_fields = (
        *LambdaInvokeFunctionOperator.template_fields,
        "records",
        "records_uri",
        "output_uri",
        "response_uri",
    )

    def __init__(
        self,
        *,
        records: Any = None,
        records_uri: str | None = None,
        output_uri: str,
        response_uri: str,
        max_xcom_bytes: int = 48 * 1024,
        **kwargs: Any,
    ):
        kwargs.setdefault("invocation_type", "RequestResponse")
        kwargs.setdefault("log_type", "Tail")
        kwargs.setdefault("botocore_config", ONE_ATTEMPT_CLIENT)
        super().__init__(**kwargs)
        self.records = records
        self.records_uri = records_uri
        self.output_uri = output_uri
        self.response_uri = response_uri
        self.max_xcom_bytes = max_xcom_bytes

    def execute(self, context: Context) -> dict[str, Any]:
        event = spot_event(self.records, self.records_uri, self.output_uri)
        payload = json.dumps(event).encode()
        if len(payload) > MAX_SYNC_PAYLOAD:
            raise AirflowFailException(
                f"the request is {len(payload):,} bytes, over Lambda's synchronous limit of "
                f"{MAX_SYNC_PAYLOAD:,} bytes: write the records to storage (JSON Lines) and pass "
                "records_uri instead"
            )
        where = f"{self.function_name}:{self.qualifier}" if self.qualifier else self.function_name
        self.log.info("Invoking %s with %s (%d bytes)", where, _what(event), len(payload))
        response = self.hook.invoke_lambda(
            function_name=self.function_name,
            invocation_type=self.invocation_type,
            log_type=self.log_type,
            payload=payload,
            qualifier=self.qualifier,
        )
        version = response.get("ExecutedVersion", "?")
        if log_result := response.get("LogResult"):
            self.log.info("The last 4 KB of the function's log (version %s):", version)
            for line in self.hook.encode_log_result(log_result, keep_empty_lines=False) or []:
                self.log.info(line)
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise AirflowFailException(f"{where} (version {version}) failed: {_error_text(body)}")
        write_whole(storage_path(self.response_uri, self.aws_conn_id), body)
        result = json.loads(body)
        summary = {k: result[k] for k in ("model", "model_version", "count", "output_uri") if k in result}
        summary |= {"function_version": version, "response_uri": self.response_uri}
        if len(body) <= self.max_xcom_bytes and "predictions" in result:
            summary["predictions"] = result["predictions"]
        self.log.info(
            "%s scored %s record(s); response stored at %s", where, result.get("count"), self.response_uri
        )
        for line in prediction_table(result):
            self.log.info("%s", line)
        return summary


def prediction_table(result: dict[str, Any], limit: int = 20) -> list[str]:
    """The answer as a person reads it in the task log: record, label, probability for the first
    `limit` records, then how many more there are and where they all are."""
    predictions = result.get("predictions")
    head = f"{result.get('count')} prediction(s), model {result.get('model')} {result.get('model_version')}"
    if predictions is None:
        return [f"{head}: written to {result.get('output_uri')}"]
    rows = [f"{i:>8}  {p['label']!s:<8} {p['probability']:>11.4f}" for i, p in enumerate(predictions[:limit])]
    more = len(predictions) - limit
    tail = [f"... and {more:,} more (all {len(predictions):,} in the stored response)"] if more > 0 else []
    return [f"{head}:", f"{'record':>8}  {'label':<8} {'probability':>11}", *rows, *tail]


def _what(event: dict[str, Any]) -> str:
    return (
        f"{len(event['records'])} record(s)" if "records" in event else f"records from {event['records_uri']}"
    )


def _error_text(body: bytes) -> str:
    """`Type: message` from Lambda's error payload, or the payload itself if it is not one."""
    try:
        doc = json.loads(body)
        return f"{doc['errorType']}: {doc['errorMessage']}"
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:4000]
