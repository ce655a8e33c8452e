"""The API objects a pod depends on but does not run: namespaces, service accounts, resource
quotas, and the RBAC roles and bindings a deployment applies with them (k8s/*.yaml).

Each is validated as the API server validates it (the Kubernetes JSON schemas, strictly, and the
name rules), stored with its identity, and read, listed and deleted as on a cluster. As there,
every namespace gets its `default` service account when it is created; a namespaced object in a
namespace that does not exist is refused.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes_validate

from local_cloud.kubernetes.status import KUBERNETES_VERSION, ApiError, invalid
from local_cloud.kubernetes.units import parse_quantity, rfc3339

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RBAC = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class Kind:
    resource: str  # the plural in the URL
    api_version: str
    kind: str
    namespaced: bool

    @property
    def base_path(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"


KINDS = {
    k.resource: k
    for k in (
        Kind("namespaces", "v1", "Namespace", False),
        Kind("serviceaccounts", "v1", "ServiceAccount", True),
        Kind("resourcequotas", "v1", "ResourceQuota", True),
        Kind("roles", _RBAC, "Role", True),
        Kind("rolebindings", _RBAC, "RoleBinding", True),
    )
}
# What every cluster starts with.
BUILT_IN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def received(body: Any, api_version: str, kind: str, namespace: str | None) -> dict[str, Any]:
    """A new object's body, checked as the API server decodes it: a JSON object of this kind, in
    the request's namespace (None: a cluster-wide kind); its metadata, the namespace filled in."""
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body of the request is not a JSON object")
    body.setdefault("apiVersion", api_version)
    body.setdefault("kind", kind)
    if (body["apiVersion"], body["kind"]) != (api_version, kind):
        raise ApiError(
            400,
            "BadRequest",
            f"the object's kind ({body['apiVersion']}, {body['kind']}) is not {api_version} {kind}",
        )
    metadata = body.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise ApiError(400, "BadRequest", "metadata must be an object")
    if namespace is not None:
        if metadata.get("namespace", namespace) != namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        metadata["namespace"] = namespace
    return metadata


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})


class ObjectStore:
    """The stored objects, by (resource, namespace or "", name)."""

    def __init__(self, versions: Iterator[int] | None = None):
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._versions = versions if versions is not None else itertools.count(1)
        for name in BUILT_IN_NAMESPACES:
            self.create(
                "namespaces", "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )

    def create(self, resource: str, namespace: str, body: Any) -> dict[str, Any]:
        """Store a new object sent to `namespace` ("" for a cluster-wide kind); return it as stored."""
        kind = KINDS[resource]
        metadata = received(body, kind.api_version, kind.kind, namespace if kind.namespaced else None)
        name = str(metadata.get("name") or "")
        _validate(kind, body, name)
        with self._lock:
            if kind.namespaced and ("namespaces", "", namespace) not in self._objects:
                raise not_found("namespaces", namespace)
            key = (resource, namespace, name)
            if key in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{resource} "{name}" already exists',
                    {"name": name, "kind": resource},
                )
            metadata.update(
                uid=str(uuid.uuid4()), creationTimestamp=rfc3339(), resourceVersion=str(next(self._versions))
            )
            if resource == "namespaces":
                metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
                body["spec"] = {"finalizers": ["kubernetes"]}
                body["status"] = {"phase": "Active"}
            self._objects[key] = body
        if resource == "namespaces":  # the service account controller's part
            self.create("serviceaccounts", name, {"metadata": {"name": "default"}})
        return copy.deepcopy(body)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            found = self._objects.get((resource, namespace, name))
        if found is None:
            raise not_found(resource, name)
        return copy.deepcopy(found)

    def exists(self, resource: str, namespace: str, name: str) -> bool:
        with self._lock:
            return (resource, namespace, name) in self._objects

    def list(self, resource: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of the kind, in `namespace` (None: in all), by namespace and name."""
        with self._lock:
            return [
                copy.deepcopy(o)
                for (r, ns, _), o in sorted(self._objects.items())
                if r == resource and namespace in (None, ns)
            ]

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        if resource == "namespaces":
            raise ApiError(405, "MethodNotAllowed", "the emulator does not delete namespaces")
        with self._lock:
            found = self._objects.pop((resource, namespace, name), None)
        if found is None:
            raise not_found(resource, name)
        return found


def _validate(kind: Kind, body: dict[str, Any], name: str) -> None:
    """The API server's 422 for an object it would refuse: its name, its schema, its quantities."""
    namespace = kind.resource == "namespaces"
    rule, words, longest = (_DNS_LABEL, "label", 63) if namespace else (_DNS_SUBDOMAIN, "subdomain", 253)
    if not name:
        raise invalid(name, [("metadata.name", "Required value: name is required")], kind.kind)
    if len(name) > longest or not rule.match(name):
        why = (
            f'Invalid value: "{name}": a lowercase RFC 1123 {words} must consist of lower case '
            "alphanumeric characters or '-', and must start and end with an alphanumeric character"
        )
        raise invalid(name, [("metadata.name", why)], kind.kind)
    try:
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        raise invalid(name, [(where, f"Invalid value: {exc.message}")], kind.kind) from None
    for resource, value in (
        body.get("spec", {}).get("hard", {}) if kind.kind == "ResourceQuota" else {}
    ).items():
        try:
            parse_quantity(value)
        except ValueError as exc:
            raise invalid(
                name, [(f"spec.hard[{resource}]", f'Invalid value: "{value}": {exc}')], kind.kind
            ) from None
