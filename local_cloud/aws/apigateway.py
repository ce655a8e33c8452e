"""The emulator's API Gateway HTTP APIs: a request to an API's route reaches its Lambda integration
as API Gateway sends it, and the function's answer comes back as API Gateway returns it.

moto keeps the APIs, routes, integrations and stages (the apigatewayv2 API); this WSGI middleware
serves them at `http://127.0.0.1:PORT/_aws/execute-api/API_ID/STAGE/PATH` (the `$default` stage
without its name in the path), the path-style URL other AWS emulators use in place of
`https://API_ID.execute-api.REGION.amazonaws.com/STAGE/PATH`. Only what the spot-predictions API
uses is served: `AWS_PROXY` integrations with a Lambda function (payload format 2.0), routes by
method and path (`ANY`, `{param}` and `{proxy+}` included, then `$default`). As on AWS: no API,
stage or route is a 404 `{"message":"Not Found"}`; a body over 10 MB a 413; a function error (its
own timeout included), an event Lambda refuses (over 6 MB) or an answer that is not valid a 500
`{"message":"Internal Server Error"}`; an integration that outlasts its timeout (at most 30 s) a
503, though here the function is waited for before the answer is given.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

from local_cloud.aws.awslambda.runtimes import RuntimeMissing
from local_cloud.aws.awslambda.service import MAX_SYNC_PAYLOAD, LambdaInvocations

PREFIX = "/_aws/execute-api/"
INTEGRATION_TIMEOUT_S = 30  # an HTTP API's most, and its default
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # an HTTP API's payload limit
_TEXT = re.compile(r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|[^;]*\+(json|xml))")
log = logging.getLogger("local_cloud.apigateway")


def url(endpoint: str, api_id: str, stage: str = "$default") -> str:
    """Where the emulator serves a stage of an HTTP API."""
    return f"{endpoint.rstrip('/')}{PREFIX}{api_id}" + ("" if stage == "$default" else f"/{stage}")


@dataclass(frozen=True)
class _Target:
    api_id: str
    stage: str
    route_key: str
    path_parameters: dict[str, str]
    integration: Any  # moto's apigatewayv2 Integration


class HttpApis:
    """WSGI middleware: execute-api requests answered here, every other one passed to `app`."""

    def __init__(self, app: Callable[..., Any], invocations: LambdaInvocations, account: str, region: str):
        self._app = app
        self._invocations = invocations
        self._account = account
        self._region = region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return cast(Iterable[bytes], self._app(environ, start_response))
        method = environ["REQUEST_METHOD"]
        target = self._route(method, path.removeprefix(PREFIX))
        if target is None:
            return _answer(start_response, 404, {"message": "Not Found"})
        integration = target.integration
        # An OpenAPI import (the template's Body) writes the type as its extension does,
        # `aws_proxy`; API Gateway reports AWS_PROXY, moto keeps what it was given.
        kind = (integration.integration_type or "").upper()
        if kind != "AWS_PROXY" or integration.payload_format_version != "2.0":
            log.error("%s: only AWS_PROXY integrations of payload format 2.0 are served", target.route_key)
            return _answer(start_response, 500, {"message": "Internal Server Error"})
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if len(body) > MAX_REQUEST_BYTES:
            return _answer(start_response, 413, {"message": "Request Entity Too Large"})
        payload = json.dumps(_event(environ, body, target, self._account, self._region)).encode()
        timeout_s = min(INTEGRATION_TIMEOUT_S, (integration.timeout_in_millis or 30_000) / 1000)
        try:
            fn = self._invocations.function(*_function_and_qualifier(integration.integration_uri))
            if len(payload) > MAX_SYNC_PAYLOAD:  # Lambda refuses it: the integration fails
                raise LookupError(f"the event is {len(payload):,} bytes, over Lambda's {MAX_SYNC_PAYLOAD:,}")
            began = time.monotonic()
            outcome = self._invocations.invoke(fn, payload)
        except (LookupError, RuntimeMissing) as exc:
            log.error("%s: the integration failed: %s", target.route_key, exc)
            return _answer(start_response, 500, {"message": "Internal Server Error"})
        if time.monotonic() - began > timeout_s:  # API Gateway stopped waiting (the function ran on)
            return _answer(start_response, 503, {"message": "Service Unavailable"})
        if outcome.error_type:  # including the function's own timeout
            return _answer(start_response, 500, {"message": "Internal Server Error"})
        return _http_response(start_response, outcome.payload)

    def _route(self, method: str, rest: str) -> _Target | None:
        """The API, stage, route and integration a request names, or None (a 404)."""
        from moto.apigatewayv2.exceptions import ApiNotFound
        from moto.apigatewayv2.models import apigatewayv2_backends

        api_id, _, rest = rest.partition("/")
        backend = apigatewayv2_backends[self._account][self._region]
        try:
            api = backend.get_api(api_id)
        except ApiNotFound:
            return None
        first, _, after = rest.partition("/")
        if first in api.stages and first != "$default":
            stage, resource = first, "/" + after
        elif "$default" in api.stages:  # it answers at the API's root
            stage, resource = "$default", "/" + rest
        else:
            return None
        routes = {r.route_key: r for r in backend.get_routes(api_id)}
        for key, route in sorted(routes.items(), key=lambda kv: _specificity(kv[0])):
            params = _match(key, method, resource)
            if params is not None and (route.target or "").startswith("integrations/"):
                integration = backend.get_integration(api_id, route.target.removeprefix("integrations/"))
                return _Target(api_id, stage, key, params, integration)
        return None


def _specificity(route_key: str) -> tuple[int, int, bool, str]:
    """API Gateway's order: exact paths before parameters before greedy paths, a method before
    ANY, `$default` last."""
    if route_key == "$default":
        return (3, 0, True, route_key)
    method, _, path = route_key.partition(" ")
    return (2 if "+}" in path else 1 if "{" in path else 0, -len(path), method == "ANY", route_key)


def _match(route_key: str, method: str, resource: str) -> dict[str, str] | None:
    """The path parameters if the route matches the request, else None."""
    if route_key == "$default":
        return {}
    route_method, _, template = route_key.partition(" ")
    if route_method not in ("ANY", method):
        return None
    pattern = re.sub(
        r"\\\{(\w+)\\\+\\\}|\\\{(\w+)\\\}",
        lambda m: f"(?P<{m[1]}>.+)" if m[1] else f"(?P<{m[2]}>[^/]+)",
        re.escape(template),
    )
    found = re.fullmatch(pattern, resource)
    return None if found is None else found.groupdict()


def _function_and_qualifier(uri: str) -> tuple[str, str | None]:
    """A Lambda integration's function and qualifier, from its ARN or its invocation URI."""
    arn = uri.split("/functions/", 1)[1].removesuffix("/invocations") if "/functions/" in uri else uri
    parts = arn.split(":")
    return (":".join(parts[:7]), parts[7]) if len(parts) > 7 else (arn, None)


def _event(
    environ: dict[str, Any], body: bytes, target: _Target, account: str, region: str
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends a Lambda proxy integration."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.removeprefix("HTTP_").replace("_", "-").lower()
            if value:
                headers[name] = f"{headers[name]},{value}" if name in headers else value
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    query = environ.get("QUERY_STRING", "")
    params: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = (unquote(part) for part in pair.partition("="))
        params[key] = f"{params[key]},{value}" if key in params else value
    now = time.time()
    path = environ.get("PATH_INFO", "").removeprefix(PREFIX + target.api_id)
    text = not body or _TEXT.match(headers.get("content-type", "")) is not None
    if text:
        try:
            body.decode()
        except UnicodeDecodeError:  # not text after all: sent as it is, base64
            text = False
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": target.route_key,
        "rawPath": path or "/",
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": account,
            "apiId": target.api_id,
            "domainName": f"{target.api_id}.execute-api.{region}.amazonaws.com",
            "domainPrefix": target.api_id,
            "http": {
                "method": environ["REQUEST_METHOD"],
                "path": path or "/",
                "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"),
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": target.route_key,
            "stage": target.stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not text,
    }
    if body:
        event["body"] = body.decode() if text else base64.b64encode(body).decode()
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if target.path_parameters:
        event["pathParameters"] = target.path_parameters
    return event


def _http_response(start_response: Callable[..., Any], payload: bytes) -> list[bytes]:
    """The function's answer as API Gateway returns it (payload format 2.0): a `statusCode` answer
    as it says; any other JSON as a 200 with that JSON as the body."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return _answer(start_response, 500, {"message": "Internal Server Error"})
    if not isinstance(answer, dict) or "statusCode" not in answer:
        return _send(start_response, 200, [("Content-Type", "application/json")], payload)
    try:
        status = int(answer["statusCode"])
        body = answer.get("body") or ""
        data = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode()
        headers = [(str(k), str(v)) for k, v in (answer.get("headers") or {}).items()]
        headers += [("Set-Cookie", str(c)) for c in answer.get("cookies") or []]
    except (TypeError, ValueError, AttributeError):
        return _answer(start_response, 500, {"message": "Internal Server Error"})
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "text/plain; charset=utf-8"))
    return _send(start_response, status, headers, data)


def _answer(start_response: Callable[..., Any], status: int, body: dict[str, str]) -> list[bytes]:
    return _send(start_response, status, [("Content-Type", "application/json")], json.dumps(body).encode())


def _send(
    start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]], data: bytes
) -> list[bytes]:
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(
        f"{status} {phrase}",
        [*kept, ("Content-Length", str(len(data))), ("Apigw-Requestid", str(uuid.uuid4()))],
    )
    return [data]
