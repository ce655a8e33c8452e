"""The emulator's Lambda Invoke: moto keeps the functions, versions and aliases; this runs them.

A WSGI middleware in front of moto that answers POST .../functions/NAME/invocations itself: it
resolves the name and qualifier (version or alias) with moto's backend, refuses a request over
Lambda's 6 MB synchronous limit as AWS does, runs the version in a warm sandbox
(local_cloud.aws.awslambda.sandbox), and answers with Lambda's headers: X-Amz-Executed-Version,
X-Amz-Function-Error, and the 4 KB log tail in X-Amz-Log-Result when LogType is Tail.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import parse_qs, unquote

from local_cloud.aws.awslambda.runtimes import RuntimeMissing
from local_cloud.aws.awslambda.sandbox import FunctionVersion, Outcome, SandboxPool

# Lambda's limit for synchronous request and response payloads.
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
log = logging.getLogger("local_cloud.lambda")


class LambdaInvocations:
    def __init__(self, app: Callable[..., Any], pool: SandboxPool, account: str, region: str):
        self._app = app
        self._pool = pool
        self._account = account
        self._region = region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = _INVOKE.match(environ.get("PATH_INFO", "")) if environ["REQUEST_METHOD"] == "POST" else None
        if match is None:
            return cast(Iterable[bytes], self._app(environ, start_response))
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if len(body) > MAX_SYNC_PAYLOAD:
            message = (
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation"
            )
            return _error(start_response, "413 Request Entity Too Large", "RequestTooLargeException", message)
        qualifier = parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier", [None])[0]
        try:
            fn = self.function(unquote(match["name"]), qualifier)
        except LookupError as exc:
            return _error(start_response, "404 Not Found", "ResourceNotFoundException", str(exc))
        kind = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        headers = [("X-Amz-Executed-Version", fn.version)]
        if kind == "DryRun":
            start_response("204 No Content", headers)
            return [b""]
        if kind == "Event":
            threading.Thread(target=self._pool.invoke, args=(fn, body), daemon=True).start()
            start_response("202 Accepted", headers + [("Content-Length", "0")])
            return [b""]
        try:
            outcome = self.invoke(fn, body)
        except RuntimeMissing as exc:  # the emulator's own setup, not the function's fault
            return _error(start_response, "500 Internal Server Error", "ServiceException", str(exc))
        return self._respond(outcome, environ, headers, start_response)

    def invoke(self, fn: FunctionVersion, payload: bytes) -> Outcome:
        """Run a synchronous invocation (RuntimeMissing if the runtime's Python is not prepared)."""
        outcome = self._pool.invoke(fn, payload)
        log.info(
            "invoked %s:%s in %.1f ms (%s)",
            fn.arn,
            fn.version,
            outcome.duration_ms,
            outcome.error_type or "ok",
        )
        return outcome

    def _respond(
        self,
        outcome: Outcome,
        environ: dict[str, Any],
        headers: list[tuple[str, str]],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        payload, error = outcome.payload, outcome.error_type
        if len(payload) > MAX_SYNC_PAYLOAD:
            payload = json.dumps(
                {
                    "errorMessage": f"Response payload size ({len(payload)} bytes) exceeded maximum allowed "
                    f"payload size ({MAX_SYNC_PAYLOAD} bytes).",
                    "errorType": "Function.ResponseSizeTooLarge",
                }
            ).encode()
            error = "Unhandled"
        if error:
            headers.append(("X-Amz-Function-Error", error))
        if environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail":
            headers.append(("X-Amz-Log-Result", outcome.log_tail))
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        start_response("200 OK", headers)
        return [payload]

    def function(self, name: str, qualifier: str | None) -> FunctionVersion:
        """The version a name (or ARN) and qualifier resolve to; LookupError if none."""
        from moto.awslambda.exceptions import UnknownFunctionException
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[self._account][self._region]
        try:
            fn = backend.get_function(name, qualifier)
        except UnknownFunctionException as exc:
            raise LookupError(exc.message) from None
        if fn is None:
            raise LookupError(f"Function not found: {name}:{qualifier}")
        if not fn.code_bytes:
            raise LookupError(f"{name}: the emulator runs zip functions only (PackageType {fn.package_type})")
        return FunctionVersion(
            arn=fn.function_arn,
            version=str(fn.version),
            runtime=str(fn.run_time),
            handler=str(fn.handler),
            code=fn.code_bytes,
            code_sha256=fn.code_sha_256,
            environment={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
            timeout=int(fn.timeout),
            memory_size=int(fn.memory_size),
        )


def _error(start_response: Callable[..., Any], status: str, kind: str, message: str) -> list[bytes]:
    body = json.dumps({"Type": "User", "message": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", kind),
        ],
    )
    return [body]
