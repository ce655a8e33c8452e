"""Every request to the emulator's AWS APIs is checked against botocore's models, as AWS would.

A WSGI middleware in front of moto: a JSON-protocol request (EMR) whose parameters fail
botocore's validation gets AWS's 400 ValidationException and never reaches moto, so a request
that works offline is one that AWS would accept too. Each checked request is written to a
journal (JSON lines) that tests read.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import OperationNotFoundError
from botocore.validate import ParamValidator

# JSON-protocol services the emulator answers, named by their X-Amz-Target prefix.
JSON_SERVICES = ("emr",)


class RequestValidator:
    def __init__(self, app: Callable, journal: Path | None = None, services: Iterable[str] = JSON_SERVICES):
        session = botocore.session.get_session()
        models = [session.get_service_model(name) for name in services]
        self._models = {m.metadata["targetPrefix"]: m for m in models}
        self._app = app
        self._journal = journal
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        model = self._models.get(prefix)
        if model is None:
            return self._app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        error = _check(model, operation, body)
        self._record({"service": model.service_name, "operation": operation, "error": error})
        if error is None:
            return self._app(environ, start_response)
        kind = "UnknownOperationException" if error.startswith("unknown operation") else "ValidationException"
        payload = json.dumps({"__type": kind, "message": error}).encode()
        start_response(
            "400 Bad Request",
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    def _record(self, entry: dict[str, Any]) -> None:
        if self._journal is None:
            return
        with self._lock, self._journal.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")


def _check(model: Any, operation: str, body: bytes) -> str | None:
    """None if the request is valid, else botocore's report of what is wrong."""
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
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else None


def read_journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
