"""The API server's version and its errors, answered as a v1 Status."""

from __future__ import annotations

from typing import Any

KUBERNETES_VERSION = "1.37.0"


class ApiError(Exception):
    """An API server error, answered as a v1 Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def invalid(name: str, causes: list[tuple[str, str]], kind: str = "Pod") -> ApiError:
    """The API server's 422 for an object that fails validation: (field, problem) per cause."""
    texts = [f"{where}: {problem}" if where else problem for where, problem in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": "FieldValueInvalid", "message": p, "field": f} for f, p in causes],
    }
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {joined}', details)


def not_found(name: str) -> ApiError:
    return ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
