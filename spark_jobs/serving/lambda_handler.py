"""AWS Lambda handler for spot predictions: `spark_jobs.serving.lambda_handler.handler`.

Configuration (function environment):
  ML_STORAGE_ROOT   storage root of the model registry (s3://bucket/prefix, or a local folder offline)
  ML_MODEL_NAME     model (dataset spec) name, e.g. bank-marketing
  ML_MODEL_VERSION  registry version to serve; set by each release so a Lambda version pins one
                    model version (empty: the champion when the container starts)

Events:
  {"records": [{...}, ...]}                  predictions in the response
  {"records_uri": URI, "output_uri": URI}    a larger batch: records (JSON array or JSON Lines)
                                             read from storage, predictions written as JSON Lines
  an API Gateway proxy event (REST or HTTP API) whose body is {"records": [...]}

Bad input raises InvalidInputError, so a direct invoke reports a FunctionError naming it; through
API Gateway it is a 400 (no champion: 503) with {"error", "type"}. Messages are bounded in size and
never echo a request's content beyond a short sample of a value. `records_uri` and `output_uri`
must be storage locations (spark_jobs.locations) under ML_ALLOWED_PREFIXES, by default under
ML_STORAGE_ROOT. Anything else is raised, never returned as a success.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from typing import Any

from spark_jobs.errors import InvalidInputError, NoChampionError
from spark_jobs.locations import LocationError, allowed_prefixes, check_location
from spark_jobs.registry.store import Registry
from spark_jobs.serving.predict import (
    Predictor,
    parse_records_file,
    read_object,
    shown,
    to_json_lines,
    write_object,
)

log = logging.getLogger("spot_predictions")
log.setLevel(logging.INFO)

_PREDICTOR: Predictor | None = None


def predictor() -> Predictor:
    """The model this container serves, loaded on first use and kept for the container's life."""
    global _PREDICTOR
    if _PREDICTOR is None:
        started = time.perf_counter()
        registry = Registry(_setting("ML_STORAGE_ROOT"), _setting("ML_MODEL_NAME"), read=read_object)
        _PREDICTOR = Predictor.load(registry, os.environ.get("ML_MODEL_VERSION") or None)
        log.info(
            "loaded %s version %s in %.0f ms",
            _PREDICTOR.model,
            _PREDICTOR.version,
            (time.perf_counter() - started) * 1000,
        )
    return _PREDICTOR


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    if _is_api_gateway(event):
        return _api_gateway(event)
    return _direct(event)


def _direct(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidInputError(f"the event must be a JSON object, got {type(event).__name__}")
    keys = set(event)
    if keys == {"records"}:
        result = predictor().predict(event["records"])
        log.info("scored %d record(s) with %s", result["count"], result["model_version"])
        return result
    if keys == {"records_uri", "output_uri"}:
        return _batch(str(event["records_uri"]), str(event["output_uri"]))
    raise InvalidInputError(
        'the event must be {"records": [...]} or {"records_uri": ..., "output_uri": ...}; '
        f"got the key(s) {', '.join(shown(k) for k in sorted(keys)[:10])}"
    )


def _batch(records_uri: str, output_uri: str) -> dict[str, Any]:
    allowed = allowed_prefixes() or [_setting("ML_STORAGE_ROOT")]
    try:
        check_location(records_uri, "records_uri", allowed)
        check_location(output_uri, "output_uri", allowed)
    except LocationError as exc:
        raise InvalidInputError(str(exc)) from None
    try:
        data = read_object(records_uri)
    except FileNotFoundError:
        raise InvalidInputError(f"records_uri {records_uri} does not exist") from None
    result = predictor().predict(parse_records_file(data, records_uri))
    write_object(output_uri, to_json_lines(result.pop("predictions")))
    log.info("scored %d record(s) from %s into %s", result["count"], records_uri, output_uri)
    return result | {"output_uri": output_uri}


def _is_api_gateway(event: Any) -> bool:
    """A proxy integration's event: REST APIs send httpMethod, HTTP APIs (format 2.0) routeKey; a
    request without a body has no `body` key at all."""
    return (
        isinstance(event, dict)
        and isinstance(event.get("requestContext"), dict)
        and ("httpMethod" in event or "routeKey" in event)
    )


def _api_gateway(event: dict[str, Any]) -> dict[str, Any]:
    try:
        request = _request_body(event)
        if not isinstance(request, dict) or set(request) != {"records"}:
            raise InvalidInputError('the request body must be a JSON object {"records": [...]}')
        return _http(200, predictor().predict(request["records"]))
    except InvalidInputError as exc:
        return _http(400, {"error": str(exc), "type": type(exc).__name__})
    except NoChampionError as exc:
        return _http(503, {"error": str(exc), "type": type(exc).__name__})


def _request_body(event: dict[str, Any]) -> Any:
    """The JSON an API Gateway event carries (base64 when isBase64Encoded), or InvalidInputError."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise InvalidInputError("the request body must be text")
    try:
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body, validate=True).decode("utf-8")
        return json.loads(body)
    except binascii.Error:
        raise InvalidInputError("the request body is marked base64 but is not valid base64") from None
    except UnicodeDecodeError:
        raise InvalidInputError("the request body is not UTF-8 text") from None
    except RecursionError:
        raise InvalidInputError("the request body nests JSON too deeply") from None
    except ValueError:
        raise InvalidInputError('the request body must be JSON: {"records": [...]}') from None


def _http(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"the function's environment has no {name}: set it in the function configuration")
    return value
