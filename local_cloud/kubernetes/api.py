"""The emulator's Kubernetes API: the part of core/v1 that KubernetesPodOperator uses.

A WSGI middleware in front of the AWS apps that answers `/version`, `/api` and `/apis` itself (a
request signed for AWS passes through, whatever its path). Pods are validated as an API server
would (the Kubernetes JSON schemas, strictly, plus the name, quantity and reference checks
the schemas cannot express) and run on the emulator's kubelet (local_cloud.kubernetes.kubelet): create,
read, list with label and field selectors, patch labels and annotations, delete, logs (follow,
timestamps, since, tail) and events. Each request is journalled, one JSON line:
{"method", "path", "namespace", "pod", "status"}.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import re
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from local_cloud.kubernetes import quota
from local_cloud.kubernetes.admission import check_metadata_maps, validate_pod
from local_cloud.kubernetes.containers import Engine, describe
from local_cloud.kubernetes.images import ImageCatalog
from local_cloud.kubernetes.kubelet import NODE, PodRun
from local_cloud.kubernetes.logs import WAITING_TEXT, follow, render, since
from local_cloud.kubernetes.objects import KINDS, ObjectStore, received
from local_cloud.kubernetes.objects import not_found as objects_not_found
from local_cloud.kubernetes.selectors import (
    EVENT_FIELDS,
    POD_FIELDS,
    parse_field_selector,
    parse_label_selector,
)
from local_cloud.kubernetes.status import KUBERNETES_VERSION, ApiError, invalid, not_found
from local_cloud.kubernetes.units import rfc3339, rfc3339_nano

DEFAULT_GRACE = 30
_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the API server's: no vowels, no look-alikes
_NS = "/api/v1/namespaces/<namespace>"
_POD = _NS + "/pods/<name>"
# The other objects a deployment applies (local_cloud.kubernetes.objects), by API group.
_CORE = _NS + "/<any(serviceaccounts, resourcequotas):resource>"
_RBAC = "/apis/rbac.authorization.k8s.io/v1/namespaces/<namespace>/<any(roles, rolebindings):resource>"
# The API server's paths this emulator serves (matched with one trailing slash: optional, as on a
# cluster).
_ROUTES = Map(
    [
        Rule(path + "/", endpoint=handler, methods=[method])
        for method, paths, handler in [
            ("GET", ["/version"], "_version"),
            ("GET", ["/api"], "_api_versions"),
            ("GET", ["/api/v1"], "_api_resources"),
            ("GET", ["/api/v1/namespaces"], "_list_namespaces"),
            ("POST", ["/api/v1/namespaces"], "_create_namespace"),
            ("GET", [_NS], "_read_namespace"),
            ("GET", [_CORE, _RBAC], "_list_objects"),
            ("POST", [_CORE, _RBAC], "_create_object"),
            ("GET", [_CORE + "/<name>", _RBAC + "/<name>"], "_read_object"),
            ("DELETE", [_CORE + "/<name>", _RBAC + "/<name>"], "_delete_object"),
            ("GET", ["/api/v1/pods", _NS + "/pods"], "_list_pods"),
            ("POST", [_NS + "/pods"], "_create_pod"),
            ("GET", [_POD, _POD + "/status"], "_read_pod"),
            ("PATCH", [_POD], "_patch_pod"),
            ("DELETE", [_POD], "_delete_pod"),
            ("GET", [_POD + "/log"], "_pod_log"),
            ("GET", ["/api/v1/events", _NS + "/events"], "_list_events"),
        ]
        for path in paths
    ],
    merge_slashes=False,
)
log = logging.getLogger("local_cloud.kubernetes")


def kubeconfig(endpoint: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig for the emulator: plain http, a dummy bearer token, one current context."""
    name = "local-cloud"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint}}],
        "users": [{"name": name, "user": {"token": "local-cloud-token"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }


@dataclass
class _Pod:
    metadata: dict[str, Any]
    spec: dict[str, Any]
    run: PodRun

    def render(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": copy.deepcopy(self.metadata),
            "spec": copy.deepcopy(self.spec),
            "status": self.run.status(),
        }


class KubernetesApi:
    """WSGI middleware: Kubernetes requests answered here, every other one passed to `app`."""

    def __init__(
        self,
        app: Callable[..., Any],
        pods_dir: Path,
        images: Mapping[str, Path],
        context: Path,
        journal: Path | None = None,
        node_env: Mapping[str, str] = {},  # noqa: B006 (read only)
        engine: Engine | None = None,
    ):
        """With an `engine`, pods run as its containers, labelled with the pods folder; what an
        earlier emulator with the same folder left (killed before it could clean up) is removed."""
        self._app = app
        self._pods_dir = pods_dir
        self._catalog = ImageCatalog(images, context, node_env, engine, str(pods_dir.resolve()))
        if engine is not None and (left := engine.remove_labelled(self._catalog.label)):
            logging.getLogger("local_cloud").info(
                "removed %d container(s) an earlier emulator left", len(left)
            )
        logging.getLogger("local_cloud").info(describe(engine))
        self._journal = journal
        self._lock = threading.RLock()
        self._journal_lock = threading.Lock()
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._events: list[dict[str, Any]] = []
        self._versions = itertools.count(1)
        self._objects = ObjectStore(self._versions)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        ours = (
            path.rstrip("/") == "/version"
            or path.rstrip("/") in ("/api", "/apis")
            or path.startswith(("/api/", "/apis/"))
        )
        if not ours or _signed_for_aws(environ):
            return cast(Iterable[bytes], self._app(environ, start_response))
        method = environ["REQUEST_METHOD"]
        entry: dict[str, Any] = {"method": method, "path": path, "namespace": None, "pod": None}

        def respond(status: str, headers: list[tuple[str, str]]) -> Any:
            entry["status"] = int(status.split()[0])
            self._record(entry)
            return start_response(status, headers)

        try:
            try:
                handler, params = _ROUTES.bind("localhost").match(path.rstrip("/") + "/", method)
            except MethodNotAllowed:
                raise ApiError(
                    405, "MethodNotAllowed", f"the server does not allow this method on {path}"
                ) from None
            except NotFound:
                raise ApiError(404, "NotFound", "the server could not find the requested resource") from None
            entry["namespace"] = params.get("namespace")
            entry["pod"] = params.get("name") if "resource" not in params else None
            return getattr(self, handler)(environ, respond, entry, **params)  # type: ignore[no-any-return]
        except ApiError as exc:
            return _json(respond, exc.code, exc.status())

    def shutdown(self) -> None:
        """Stop every pod's processes: nothing the emulator started outlives it."""
        with self._lock:
            pods = list(self._pods.values())
        for pod in pods:
            pod.run.stop(grace=1.0)
        if self._catalog.engine is not None:
            self._catalog.engine.remove_labelled(self._catalog.label)

    # -- discovery and namespaces --

    def _version(
        self, environ: dict[str, Any], respond: Callable[..., Any], entry: dict[str, Any]
    ) -> Iterable[bytes]:
        major, minor, _ = KUBERNETES_VERSION.split(".")
        info = {
            "major": major,
            "minor": minor,
            "emulationMajor": major,
            "emulationMinor": minor,
            "gitVersion": f"v{KUBERNETES_VERSION}",
            "gitCommit": "local-cloud",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "n/a (local cloud emulator)",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
        return _json(respond, 200, info)

    def _api_versions(
        self, environ: dict[str, Any], respond: Callable[..., Any], entry: dict[str, Any]
    ) -> Iterable[bytes]:
        body = {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": environ.get("HTTP_HOST", "")}
            ],
        }
        return _json(respond, 200, body)

    def _api_resources(
        self, environ: dict[str, Any], respond: Callable[..., Any], entry: dict[str, Any]
    ) -> Iterable[bytes]:
        def resource(name: str, kind: str, namespaced: bool, verbs: list[str]) -> dict[str, Any]:
            return {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs}

        body = {
            "kind": "APIResourceList",
            "groupVersion": "v1",
            "resources": [
                resource("namespaces", "Namespace", False, ["create", "get", "list"]),
                resource("serviceaccounts", "ServiceAccount", True, ["create", "delete", "get", "list"]),
                resource("resourcequotas", "ResourceQuota", True, ["create", "delete", "get", "list"]),
                resource("pods", "Pod", True, ["create", "delete", "get", "list", "patch"]),
                resource("pods/log", "Pod", True, ["get"]),
                resource("pods/status", "Pod", True, ["get"]),
                resource("events", "Event", True, ["list"]),
            ],
        }
        return _json(respond, 200, body)

    def _list_namespaces(
        self, environ: dict[str, Any], respond: Callable[..., Any], entry: dict[str, Any]
    ) -> Iterable[bytes]:
        return self._list_objects(environ, respond, entry, "namespaces")

    def _create_namespace(
        self, environ: dict[str, Any], respond: Callable[..., Any], entry: dict[str, Any]
    ) -> Iterable[bytes]:
        return self._create_object(environ, respond, entry, "namespaces")

    def _read_namespace(
        self, environ: dict[str, Any], respond: Callable[..., Any], entry: dict[str, Any], namespace: str
    ) -> Iterable[bytes]:
        return self._read_object(environ, respond, entry, "namespaces", namespace)

    # -- service accounts, quotas, roles and bindings --

    def _create_object(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        resource: str,
        namespace: str = "",
    ) -> Iterable[bytes]:
        created = self._objects.create(resource, namespace, _read_json(environ))
        log.info("created %s %s", resource, "/".join(filter(None, [namespace, created["metadata"]["name"]])))
        return _json(respond, 201, self._with_status(created))

    def _read_object(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        resource: str,
        name: str,
        namespace: str = "",
    ) -> Iterable[bytes]:
        return _json(respond, 200, self._with_status(self._objects.get(resource, namespace, name)))

    def _list_objects(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        resource: str,
        namespace: str | None = None,
    ) -> Iterable[bytes]:
        _refuse_watch(_query(environ))
        kind = KINDS[resource]
        items = [self._with_status(o) for o in self._objects.list(resource, namespace)]
        return _json(respond, 200, self._list(f"{kind.kind}List", items, kind.api_version))

    def _delete_object(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        resource: str,
        name: str,
        namespace: str = "",
    ) -> Iterable[bytes]:
        return _json(respond, 200, self._objects.delete(resource, namespace, name))

    def _with_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A quota with what the namespace's pods use of it now, as the quota controller keeps it."""
        if obj.get("kind") == "ResourceQuota":
            hard = quota.hard_limits(obj)
            used = quota.total_usage(self._counted_pods(obj["metadata"]["namespace"]))
            obj["status"] = {
                "hard": obj["spec"].get("hard", {}),
                "used": {r: quota.quantity(r, used[r]) for r in hard},
            }
        return obj

    def _counted_pods(self, namespace: str) -> list[dict[str, Any]]:
        """The specs of the pods a quota counts: those not yet Succeeded or Failed."""
        with self._lock:
            pods = [p for (ns, _), p in self._pods.items() if ns == namespace]
        return [p.spec for p in pods if p.run.status().get("phase") not in ("Succeeded", "Failed")]

    # -- pods --

    def _create_pod(
        self, environ: dict[str, Any], respond: Callable[..., Any], entry: dict[str, Any], namespace: str
    ) -> Iterable[bytes]:
        body = _read_json(environ)
        metadata = received(body, "v1", "Pod", namespace)
        if not metadata.get("name") and metadata.get("generateName"):
            suffix = "".join(secrets.choice(_GENERATE_CHARS) for _ in range(5))
            metadata["name"] = f"{str(metadata['generateName'])[:58]}{suffix}"
        name = str(metadata.get("name") or "")
        entry["pod"] = name or None
        validate_pod(body, name)
        _default(body["spec"])
        if not self._objects.exists("namespaces", "", namespace):
            raise objects_not_found("namespaces", namespace)
        account = body["spec"]["serviceAccountName"]
        if not self._objects.exists("serviceaccounts", namespace, account):
            raise ApiError(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: error looking up service account {namespace}/{account}: '
                f'serviceaccount "{account}" not found',
                {"name": name, "kind": "pods"},
            )
        with self._lock:
            if (namespace, name) in self._pods:
                raise ApiError(
                    409, "AlreadyExists", f'pods "{name}" already exists', {"name": name, "kind": "pods"}
                )
            quota.admit(
                name,
                body["spec"],
                self._objects.list("resourcequotas", namespace),
                self._counted_pods(namespace),
            )
            pod = self._admit(body, namespace, name)
            self._pods[(namespace, name)] = pod
        pod.run.start()
        log.info("created pod %s/%s", namespace, name)
        return _json(respond, 201, pod.render())

    def _admit(self, body: dict[str, Any], namespace: str, name: str) -> _Pod:
        """The stored pod: its identity and its place on the node."""
        metadata, spec = body["metadata"], body["spec"]
        metadata.update(
            uid=str(uuid.uuid4()), creationTimestamp=rfc3339(), resourceVersion=str(next(self._versions))
        )
        spec["nodeName"] = NODE  # scheduled at once: the emulator is a one-node cluster
        folder = self._pods_dir / namespace / name
        if folder.exists():  # an earlier pod of the same name: its files were kept for debugging
            shutil.rmtree(folder, ignore_errors=True)
        (folder / "logs").mkdir(parents=True)
        manifest = {"metadata": metadata, "spec": spec}
        return _Pod(metadata, spec, PodRun(manifest, folder, self._catalog, self._emitter(metadata)))

    def _read_pod(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        namespace: str,
        name: str,
    ) -> Iterable[bytes]:
        return _json(respond, 200, self._get(namespace, name).render())

    def _list_pods(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        namespace: str | None = None,
    ) -> Iterable[bytes]:
        query = _query(environ)
        _refuse_watch(query)
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""), POD_FIELDS)
        with self._lock:
            pods = [p.render() for (ns, _), p in sorted(self._pods.items()) if namespace in (None, ns)]
        items = [
            p
            for p in pods
            if labels(p["metadata"].get("labels") or {}) and fields({k: f(p) for k, f in POD_FIELDS.items()})
        ]
        return _json(respond, 200, self._list("PodList", items))

    def _patch_pod(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        namespace: str,
        name: str,
    ) -> Iterable[bytes]:
        kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip()
        patch = _read_json(environ)
        with self._lock:
            pod = self._get(namespace, name)
            current = pod.render()
            if kind == "application/json-patch+json":
                patched = _json_patch(current, patch)
            elif kind in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(patch, dict):
                    raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
                patched = _merge_patch(current, patch)
            else:
                raise ApiError(
                    415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}"
                )
            if patched.get("spec") != current["spec"]:
                raise invalid(
                    name,
                    [
                        (
                            "spec",
                            "Forbidden: the emulator's pod updates may change metadata only",
                        )
                    ],
                )
            new = patched.get("metadata") or {}
            check_metadata_maps(new, name)
            for key in ("labels", "annotations"):
                if new.get(key):
                    pod.metadata[key] = new[key]
                else:
                    pod.metadata.pop(key, None)
            pod.metadata["resourceVersion"] = str(next(self._versions))
            return _json(respond, 200, pod.render())

    def _delete_pod(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        namespace: str,
        name: str,
    ) -> Iterable[bytes]:
        options = _read_json(environ) or {}
        query = _query(environ)
        with self._lock:
            pod = self._get(namespace, name)
            grace = query.get(
                "gracePeriodSeconds", options.get("gracePeriodSeconds") if isinstance(options, dict) else None
            )
            if grace is None:
                grace = pod.spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE)
            pod.metadata.setdefault("deletionTimestamp", rfc3339())
            pod.metadata.setdefault("deletionGracePeriodSeconds", int(grace))
        # The kubelet's part: stop the processes, then the pod is gone (its files stay for debugging).
        pod.run.stop(float(grace))
        rendered = pod.render()
        with self._lock:
            if self._pods.get((namespace, name)) is pod:
                del self._pods[(namespace, name)]
        log.info("deleted pod %s/%s", namespace, name)
        return _json(respond, 200, rendered)

    def _pod_log(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        namespace: str,
        name: str,
    ) -> Iterable[bytes]:
        query = _query(environ)
        pod = self._get(namespace, name)
        names = [c["name"] for c in pod.spec.get("initContainers", []) + pod.spec["containers"]]
        container = query.get("container") or ""
        if not container:
            if len(pod.spec["containers"]) != 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]",
                )
            container = pod.spec["containers"][0]["name"]
        if container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        status = pod.run.container(container)
        assert status is not None
        waiting = status.state.get("waiting")
        if _flag(query, "previous") and status.restart_count == 0:
            raise ApiError(
                400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found'
            )
        if waiting and status.restart_count == 0:
            reason = WAITING_TEXT.get(waiting.get("reason", ""), waiting.get("reason", "ContainerCreating"))
            raise ApiError(
                400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        since_ns = since(query)
        tail = int(query["tailLines"]) if "tailLines" in query else None
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        lines = follow(
            pod.run.log_path(container),
            lambda: pod.run.is_terminated(container),
            follow=_flag(query, "follow"),
            since_ns=since_ns,
            tail=tail,
        )
        chunks = render(lines, _flag(query, "timestamps"), limit)
        headers = [("Content-Type", "text/plain"), ("Cache-Control", "no-cache")]
        if not _flag(query, "follow"):
            body = b"".join(chunks)
            respond("200 OK", headers + [("Content-Length", str(len(body)))])
            return [body]
        respond("200 OK", headers)  # no length: werkzeug streams it chunked, a chunk per read
        return chunks

    # -- events --

    def _list_events(
        self,
        environ: dict[str, Any],
        respond: Callable[..., Any],
        entry: dict[str, Any],
        namespace: str | None = None,
    ) -> Iterable[bytes]:
        query = _query(environ)
        _refuse_watch(query)
        involved = re.search(r"involvedObject\.name==?([^,]+)", query.get("fieldSelector", ""))
        entry["pod"] = involved.group(1) if involved else None  # whose events were asked for
        fields = parse_field_selector(query.get("fieldSelector", ""), EVENT_FIELDS)
        labels = parse_label_selector(query.get("labelSelector", ""))
        with self._lock:
            events = [
                copy.deepcopy(e) for e in self._events if namespace in (None, e["metadata"]["namespace"])
            ]
        items = [
            e
            for e in events
            if labels(e["metadata"].get("labels") or {})
            and fields({k: f(e) for k, f in EVENT_FIELDS.items()})
        ]
        return _json(respond, 200, self._list("EventList", items))

    def _emitter(self, metadata: dict[str, Any]) -> Callable[[str, str, str, str | None], None]:
        def emit(kind: str, reason: str, message: str, container: str | None) -> None:
            now_ns = time.time_ns()
            scheduler = reason == "Scheduled"
            with self._lock:
                version = str(next(self._versions))
                self._events.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Event",
                        "metadata": {
                            "name": f"{metadata['name']}.{now_ns:x}",
                            "namespace": metadata["namespace"],
                            "uid": str(uuid.uuid4()),
                            "resourceVersion": version,
                            "creationTimestamp": rfc3339(now_ns),
                        },
                        "involvedObject": {
                            "kind": "Pod",
                            "namespace": metadata["namespace"],
                            "name": metadata["name"],
                            "uid": metadata["uid"],
                            "apiVersion": "v1",
                            "resourceVersion": metadata["resourceVersion"],
                            **({"fieldPath": f"spec.containers{{{container}}}"} if container else {}),
                        },
                        "reason": reason,
                        "message": message,
                        "source": {"component": "default-scheduler"}
                        if scheduler
                        else {"component": "kubelet", "host": NODE},
                        "firstTimestamp": rfc3339(now_ns),
                        "lastTimestamp": rfc3339(now_ns),
                        "eventTime": rfc3339_nano(now_ns - now_ns % 1000),
                        "count": 1,
                        "type": kind,
                        "reportingComponent": "default-scheduler" if scheduler else "kubelet",
                        "reportingInstance": "" if scheduler else NODE,
                    }
                )
            log.info("event %s/%s %s %s: %s", metadata["namespace"], metadata["name"], kind, reason, message)

        return emit

    # -- helpers --

    def _get(self, namespace: str, name: str) -> _Pod:
        with self._lock:
            pod = self._pods.get((namespace, name))
        if pod is None:
            raise not_found(name)
        return pod

    def _list(self, kind: str, items: list[dict[str, Any]], api_version: str = "v1") -> dict[str, Any]:
        for item in items:  # a list's items carry no kind of their own
            item.pop("kind", None)
            item.pop("apiVersion", None)
        with self._lock:
            version = str(next(self._versions))
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def _record(self, entry: dict[str, Any]) -> None:
        if self._journal is None:
            return
        with self._journal_lock, self._journal.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")


# --- patches --------------------------------------------------------------------------------


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (a strategic merge patch of maps is the same)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 JSON patch (the jsonpatch library), refused as the API server refuses one."""
    import jsonpatch

    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
    try:
        patched: dict[str, Any] = jsonpatch.apply_patch(document, operations)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise ApiError(422, "Invalid", f"the JSON patch test failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise ApiError(422, "Invalid", f"the JSON patch cannot be applied: {exc}") from None
    return patched


# --- HTTP helpers ---------------------------------------------------------------------------


def _signed_for_aws(environ: dict[str, Any]) -> bool:
    query = environ.get("QUERY_STRING", "")
    return environ.get("HTTP_AUTHORIZATION", "").startswith("AWS") or "X-Amz-Signature=" in query


def _query(environ: dict[str, Any]) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def _refuse_watch(query: Mapping[str, str]) -> None:
    if _flag(query, "watch"):
        raise ApiError(400, "BadRequest", "watch is not supported by the local cloud emulator; poll instead")


def _read_json(environ: dict[str, Any]) -> Any:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise ApiError(400, "BadRequest", "the body of the request is not valid JSON") from None


def _json(respond: Callable[..., Any], code: int, body: Any) -> list[bytes]:
    payload = json.dumps(body).encode()
    phrase = {
        200: "OK",
        201: "Created",
        400: "Bad Request",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        415: "Unsupported Media Type",
        422: "Unprocessable Entity",
    }.get(code, "Error")
    respond(f"{code} {phrase}", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _default(spec: dict[str, Any]) -> None:
    """The API server's defaults for a pod's spec and containers."""
    for key, value in {
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": DEFAULT_GRACE,
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "securityContext": {},
        "enableServiceLinks": True,
        "priority": 0,
    }.items():
        spec.setdefault(key, value)
    for container in spec.get("initContainers", []) + spec["containers"]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        tag = container["image"].rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
