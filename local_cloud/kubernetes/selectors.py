"""Label and field selectors, parsed as the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from local_cloud.kubernetes.status import ApiError

Selector = Callable[[Mapping[str, str]], bool]
_REQUIREMENT = re.compile(
    r"^\s*(?:(?P<not>!)\s*(?P<absent>[\w./-]+)"
    r"|(?P<key>[\w./-]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)"
    r"|\s+(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?)\s*$"
)


def parse_label_selector(text: str) -> Selector:
    """A label selector (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma-joined)."""
    tests: list[Selector] = []
    for part in re.split(r",(?![^(]*\))", text):
        if not part.strip():
            continue
        match = _REQUIREMENT.match(part)
        if not match:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
        tests.append(_requirement(match))
    return lambda labels: all(test(labels) for test in tests)


def _requirement(match: re.Match[str]) -> Selector:
    if match["absent"]:
        absent = match["absent"]
        return lambda labels: absent not in labels
    key = match["key"]
    if match["op"]:
        value, negate = match["value"], match["op"] == "!="
        return lambda labels: (labels.get(key) == value) != negate
    if match["set"]:
        values = {v.strip() for v in match["values"].split(",")}
        if match["set"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    return lambda labels: key in labels


def parse_field_selector(text: str, known: Mapping[str, Any]) -> Selector:
    """A field selector of `field=value`, `field==value` and `field!=value` terms, comma-joined."""
    tests: list[Selector] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.match(r"^([\w.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not match:
            raise ApiError(400, "BadRequest", f"invalid selector: '{part}'; can't understand '{part}'")
        key, op, value = match.groups()
        if key not in known:
            raise ApiError(
                400, "BadRequest", f"field label not supported: {key} (supported: {', '.join(sorted(known))})"
            )
        tests.append(_field_test(key, value, op == "!="))
    return lambda fields: all(test(fields) for test in tests)


def _field_test(key: str, value: str, negate: bool) -> Selector:
    return lambda fields: (fields.get(key) == value) != negate


def _involved(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda e: str(e["involvedObject"].get(key, ""))


POD_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda p: p["metadata"]["name"],
    "metadata.namespace": lambda p: p["metadata"]["namespace"],
    "spec.nodeName": lambda p: p["spec"].get("nodeName", ""),
    "spec.restartPolicy": lambda p: p["spec"].get("restartPolicy", ""),
    "spec.schedulerName": lambda p: p["spec"].get("schedulerName", ""),
    "spec.serviceAccountName": lambda p: p["spec"].get("serviceAccountName", ""),
    "status.phase": lambda p: p["status"].get("phase", ""),
    "status.podIP": lambda p: p["status"].get("podIP", ""),
}
EVENT_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda e: e["metadata"]["name"],
    "metadata.namespace": lambda e: e["metadata"]["namespace"],
    "reason": lambda e: e["reason"],
    "type": lambda e: e["type"],
    "source": lambda e: e["source"]["component"],
    "reportingComponent": lambda e: e["reportingComponent"],
    **{
        f"involvedObject.{key}": _involved(key)
        for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    },
}
