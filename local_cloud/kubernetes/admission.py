"""Admission: a pod is checked as the API server checks it, beyond the JSON schemas (names,
labels and annotations, quantities, references), and what the emulator does not run is refused."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate

from local_cloud.kubernetes.status import KUBERNETES_VERSION, invalid
from local_cloud.kubernetes.units import parse_quantity

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_FIELD_REFS = {
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.podIP",
}


def validate_pod(body: dict[str, Any], name: str) -> None:
    """Raise the API server's 422 for a pod it would refuse, or the emulator's for one it cannot run."""
    metadata = body["metadata"]
    if not name:
        raise invalid(name, [("metadata.name", "Required value: name or generateName is required")])
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise invalid(
            name,
            [
                (
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                    "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                    "character (e.g. 'example.com', regex used for validation is "
                    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                )
            ],
        )
    try:
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = _field(list(exc.path))
        required = re.match(r"'(.+)' is a required property", exc.message)
        if exc.validator == "required" and required:
            where = f"{where}.{required.group(1)}" if where else required.group(1)
            raise invalid(name, [(where, f"Required value ({exc.message})")]) from None
        raise invalid(name, [(where, f"Invalid value: {exc.message}")]) from None
    check_metadata_maps(metadata, name)
    causes = _semantic_causes(body["spec"]) + _unsupported_causes(body["spec"])
    if causes:
        raise invalid(name, causes)


def check_metadata_maps(metadata: dict[str, Any], name: str) -> None:
    causes = []
    for key, value in (metadata.get("labels") or {}).items():
        if not _label_key_ok(key):
            causes.append(
                (
                    "metadata.labels",
                    f'Invalid value: "{key}": name part must consist of '
                    "alphanumeric characters, '-', '_' or '.' (at most 63)",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                (
                    "metadata.labels",
                    f'Invalid value: "{value}": a valid label must be an empty '
                    "string or consist of alphanumeric characters, '-', '_' or '.', and must start "
                    "and end with an alphanumeric character (at most 63)",
                )
            )
    if causes:
        raise invalid(name, causes)


def _label_key_ok(key: str) -> bool:
    prefix, _, part = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(part) <= 63 and bool(_LABEL_NAME.match(part))


def _semantic_causes(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """What the API server checks beyond the schema: names, quantities, references."""
    causes: list[tuple[str, str]] = []
    volumes = {v.get("name") for v in spec.get("volumes", [])}
    seen: set[str] = set()
    if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
        causes.append(
            (
                "spec.restartPolicy",
                f'Unsupported value: "{spec["restartPolicy"]}": supported '
                'values: "Always", "Never", "OnFailure"',
            )
        )
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group, [])):
            at = f"spec.{group}[{i}]"
            cname = container.get("name", "")
            if not _DNS_LABEL.match(cname) or len(cname) > 63:
                causes.append(
                    (
                        f"{at}.name",
                        f'Invalid value: "{cname}": a lowercase RFC 1123 label must '
                        "consist of lower case alphanumeric characters or '-', and must start and end "
                        "with an alphanumeric character",
                    )
                )
            elif cname in seen:
                causes.append((f"{at}.name", f'Duplicate value: "{cname}"'))
            seen.add(cname)
            if not container.get("image"):
                causes.append((f"{at}.image", "Required value"))
            resources = container.get("resources") or {}
            parsed: dict[str, dict[str, Any]] = {}
            for kind in ("limits", "requests"):
                for resource, value in (resources.get(kind) or {}).items():
                    try:
                        parsed.setdefault(kind, {})[resource] = parse_quantity(value)
                    except ValueError as exc:
                        causes.append(
                            (f"{at}.resources.{kind}.{resource}", f'Invalid value: "{value}": {exc}')
                        )
            for resource, request in parsed.get("requests", {}).items():
                limit = parsed.get("limits", {}).get(resource)
                if limit is not None and request > limit:
                    asked, most = resources["requests"][resource], resources["limits"][resource]
                    causes.append(
                        (
                            f"{at}.resources.requests",
                            f'Invalid value: "{asked}": must be less than or equal to {resource} '
                            f"limit of {most}",
                        )
                    )
            for j, mount in enumerate(container.get("volumeMounts", [])):
                if mount.get("name") not in volumes:
                    causes.append((f"{at}.volumeMounts[{j}].name", f'Not found: "{mount.get("name")}"'))
    return causes


def _unsupported_causes(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """What the emulator cannot stand in for, refused up front rather than half-emulated."""
    causes = []
    for i, volume in enumerate(spec.get("volumes", [])):
        kinds = [k for k in volume if k != "name"]
        if kinds != ["emptyDir"]:
            causes.append(
                (
                    f"spec.volumes[{i}]",
                    f"Unsupported value: {kinds}: the local cloud emulator supports emptyDir volumes only",
                )
            )
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group, [])):
            at = f"spec.{group}[{i}]"
            if container.get("envFrom"):
                causes.append(
                    (
                        f"{at}.envFrom",
                        "Unsupported value: the local cloud emulator has no ConfigMaps or Secrets",
                    )
                )
            for j, var in enumerate(container.get("env", [])):
                source = var.get("valueFrom")
                if source is None:
                    continue
                ref = (source.get("fieldRef") or {}).get("fieldPath")
                if ref not in _FIELD_REFS:
                    causes.append(
                        (
                            f"{at}.env[{j}].valueFrom",
                            f"Unsupported value: {sorted(source)}: the "
                            "local cloud emulator supports fieldRef to "
                            f"{', '.join(sorted(_FIELD_REFS))} only (no Secrets or ConfigMaps)",
                        )
                    )
    return causes


def _field(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
