"""Every request to the emulator's AWS APIs is checked against botocore's models, as AWS would.

A WSGI middleware in front of moto. For a JSON-protocol service (EMR, by X-Amz-Target) or a
REST-JSON one (Lambda, by the signing scope and the model's URI templates), the request's
parameters are rebuilt from its path, query, headers and body and checked with botocore's
ParamValidator; an invalid one gets AWS's 400 ValidationException and never reaches moto, so a
request that works offline is one AWS would accept too. Each checked request is written to a
journal (JSON lines) that tests read.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel
from botocore.validate import ParamValidator

# JSON-protocol services the emulator answers, named by their X-Amz-Target prefix.
JSON_SERVICES = ("emr",)
# REST-JSON services, named by their signing name.
REST_SERVICES = ("lambda",)
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")


def credential_service(environ: dict[str, Any]) -> str | None:
    """The service a SigV4-signed request was signed for (its credential scope), if any."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return scope.group("service") if scope else None


@dataclass(frozen=True)
class Checked:
    """A request the validator recognised: which operation, and what is wrong with it (if anything)."""

    service: str
    operation: str
    error: str | None
    # The request's parameters: a JSON body's members; for REST, path and query parameters too.
    params: dict[str, Any] = field(default_factory=dict, compare=False)


class RequestValidator:
    def __init__(
        self,
        app: Callable[..., Any],
        journal: Path | None = None,
        on_success: Callable[[Checked, dict[str, Any], bytes], None] | None = None,
        rules: Mapping[tuple[str, str], Callable[[dict[str, Any]], str | None]] | None = None,
        authorize: Callable[[Checked, dict[str, Any]], tuple[str, list[Any], bytes] | None] | None = None,
    ):
        session = botocore.session.get_session()
        self._json = {
            m.metadata["targetPrefix"]: m for m in (session.get_service_model(n) for n in JSON_SERVICES)
        }
        self._rest = {name: _RestRoutes(session.get_service_model(name)) for name in REST_SERVICES}
        self._app = app
        self._journal = journal
        self._on_success = on_success
        # What the service checks beyond the request's shape (JSON-protocol operations), by
        # (service, operation): a function of the parameters that says what is wrong, or None.
        self._rules = rules or {}
        # Who may make a well-formed request (local_cloud.aws.iam): a denial's status, headers, body.
        self._authorize = authorize
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        service = credential_service(environ)
        routes = self._rest.get(service) if service else None
        if prefix not in self._json and routes is None:
            return cast(Iterable[bytes], self._app(environ, start_response))
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        if prefix in self._json:
            model = self._json[prefix]
            error = _json_error(model, operation, body)
            rule = self._rules.get((model.service_name, operation))
            params = json.loads(body or b"{}") if error is None else {}
            if error is None and rule is not None:
                error = rule(params)
            checked: Checked | None = Checked(model.service_name, operation, error, params)
        else:
            assert routes is not None
            checked = routes.check(environ, body)
        if checked is None:  # not an operation of the model: moto answers as AWS would (404)
            return cast(Iterable[bytes], self._app(environ, start_response))
        self._record({"service": checked.service, "operation": checked.operation, "error": checked.error})
        if checked.error is None:
            denial = self._authorize(checked, environ) if self._authorize else None
            if denial is not None:
                status, headers, payload = denial
                start_response(status, headers)
                return [payload]
            return self._forward(checked, environ, body, start_response)
        kind = (
            "UnknownOperationException"
            if checked.error.startswith("unknown operation")
            else "ValidationException"
        )
        payload = json.dumps({"__type": kind, "message": checked.error}).encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(payload))),
                ("x-amzn-ErrorType", kind),
            ],
        )
        return [payload]

    def _forward(
        self, checked: Checked, environ: dict[str, Any], body: bytes, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self._on_success is None:
            return cast(Iterable[bytes], self._app(environ, start_response))
        status: list[str] = []

        def capture(code: str, headers: list[Any], exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        result = cast(Iterable[bytes], self._app(dict(environ), capture))
        if status and status[0].startswith("2"):
            self._on_success(checked, environ, body)
        return result

    def _record(self, entry: dict[str, Any]) -> None:
        if self._journal is None:
            return
        with self._lock, self._journal.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")


def _json_error(model: ServiceModel, operation: str, body: bytes) -> str | None:
    """What is wrong with a JSON-protocol request, or None."""
    try:
        shape = model.operation_model(operation).input_shape
    except OperationNotFoundError:
        return f"unknown operation {operation!r}"
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return "the request body is not JSON"
    if shape is None:
        return None if params == {} else "this operation takes no parameters"
    return _validate(params, shape)


def _validate(params: dict[str, Any], shape: Any) -> str | None:
    """botocore's report of what is wrong with `params` for `shape`, or None."""
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else None


class _RestRoutes:
    """A REST-JSON service's operations by method and URI template, and each request's parameters
    rebuilt from where the model says they travel (path, query, headers, body)."""

    def __init__(self, model: ServiceModel):
        self._service = model.service_name
        self._routes: list[tuple[str, re.Pattern[str], OperationModel]] = []
        for name in model.operation_names:
            op = model.operation_model(name)
            template = op.http["requestUri"].split("?")[0].rstrip("/")
            pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", template)
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
            self._routes.append((op.http["method"], re.compile(f"^{pattern}/?$"), op))

    def check(self, environ: dict[str, Any], body: bytes) -> Checked | None:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        for route_method, pattern, op in self._routes:
            match = pattern.match(path) if route_method == method else None
            if match:
                error = _rest_error(op, match.groupdict(), environ, body)
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                params |= {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
                if error is None and body and op.http.get("method") in ("POST", "PUT"):
                    with contextlib.suppress(ValueError):
                        doc = json.loads(body)
                        params |= doc if isinstance(doc, dict) else {}
                return Checked(self._service, op.name, error, params)
        return None


def _rest_error(
    op: OperationModel, path_params: dict[str, str], environ: dict[str, Any], body: bytes
) -> str | None:
    shape = op.input_shape
    if shape is None:
        return None
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    params: dict[str, Any] = {}
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        where, key = member.serialization.get("location"), member.serialization.get("name", name)
        if where == "uri" and key in path_params:
            params[name] = unquote(path_params[key])
        elif where == "querystring" and key in query:
            values = query[key]
            params[name] = values if member.type_name == "list" else _scalar(member.type_name, values[0])
        elif (
            where == "header" and (value := environ.get("HTTP_" + key.upper().replace("-", "_"))) is not None
        ):
            params[name] = _scalar(member.type_name, value)
    if payload:
        if body:
            params[payload] = body
    elif body:
        try:
            doc = json.loads(body)
        except ValueError:
            return "the request body is not JSON"
        if not isinstance(doc, dict):
            return "the request body must be a JSON object"
        params.update(doc)
    return _validate(params, shape)


def _scalar(type_name: str, value: str) -> Any:
    if type_name in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            return value  # reported by the validator as the wrong type
    if type_name == "boolean":
        return value.lower() == "true"
    return value


def read_journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
