"""The emulator's kubelet: each pod's containers run as real containers, or as local processes.

With a container engine (local_cloud.kubernetes.containers: podman or docker) the image a pod names is built
from its Dockerfile and each container runs in it, with the securityContext, limits, volumes and env
a node gives it. Without one, the fallback runs the container as a host process: the image is known
through its Dockerfile (ENTRYPOINT, CMD, WORKDIR, ENV, USER of the last stage), the build context
stands in for the image's files and this interpreter for its Python; its process tree's memory is
watched against the limit, and readOnlyRootFilesystem, the image's user, CPU limits and emptyDir
size limits are not enforced. Either way the container's stdout and stderr are stamped line by line
into a CRI-format log file, as the container runtime writes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import psutil

from local_cloud.kubernetes.containers import RunSpec, describe, write_env_file
from local_cloud.kubernetes.images import Image, ImageCatalog, PullError
from local_cloud.kubernetes.logs import LogWriter, parse_records
from local_cloud.kubernetes.units import parse_quantity, rfc3339
from local_cloud.lifetime import terminate, terminate_all

NODE = "local-cloud"
HOST_IP = "127.0.0.1"
MEMORY_POLL = 0.2  # seconds between two looks at a container's memory
IMAGE_PULL_BACKOFF = 1.0  # how long ErrImagePull shows before ImagePullBackOff
MAX_KILL_GRACE = 5.0  # the longest a deleted pod's processes get between SIGTERM and SIGKILL
# What a container inherits from the host: the host stands in for the image's binaries and Java.
HOST_ENV = ("PATH", "JAVA_HOME", "LANG", "LC_ALL", "TZ")
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
_VAR_REF = re.compile(r"\$\$|\$\((\w+)\)")

Emit = Callable[[str, str, str, str | None], None]  # type, reason, message, container name


# --- the kubelet ----------------------------------------------------------------------------


@dataclass
class ContainerStatus:
    """One container's status as the kubelet reports it."""

    name: str
    image: str
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    container_id: str | None = None  # local://<pid> for a host process, <engine>://<id> otherwise
    image_id: str = ""

    def render(self) -> dict[str, Any]:
        running = "running" in self.state
        status = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": running,
            "started": running,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id is not None:
            status["containerID"] = self.container_id
        return status


class PodRun:
    """One pod on the emulator's node: its containers' processes and the status a kubelet reports."""

    def __init__(self, pod: dict[str, Any], folder: Path, catalog: ImageCatalog, emit: Emit):
        self.pod = pod
        self.folder = folder
        self._catalog = catalog
        self._emit = emit
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._containers: dict[str, str] = {}  # container name -> the engine's name for it
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.start_time: str | None = None
        self._conditions: dict[str, dict[str, Any]] = {}
        spec = pod["spec"]
        self._init = [ContainerStatus(c["name"], c["image"]) for c in spec.get("initContainers", [])]
        self._main = [ContainerStatus(c["name"], c["image"]) for c in spec["containers"]]
        for status in self._init:
            status.state = {"waiting": {"reason": "PodInitializing"}}
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)
        self._timer: threading.Timer | None = None

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    def start(self) -> None:
        self._thread.start()

    def log_path(self, container: str) -> Path:
        return self.folder / "logs" / f"{container}.log"

    def container(self, name: str) -> ContainerStatus | None:
        return next((c for c in self._init + self._main if c.name == name), None)

    def is_terminated(self, name: str) -> bool:
        status = self.container(name)
        return status is None or "terminated" in status.state or self._stopping.is_set()

    def status(self) -> dict[str, Any]:
        """The pod's `status` as the API server shows it."""
        with self._lock:
            status: dict[str, Any] = {"phase": self.phase, "conditions": list(self._conditions.values())}
            if self.start_time:
                status |= {
                    "startTime": self.start_time,
                    "hostIP": HOST_IP,
                    "hostIPs": [{"ip": HOST_IP}],
                    "podIP": HOST_IP,  # the processes share the host's network
                    "podIPs": [{"ip": HOST_IP}],
                    "containerStatuses": [c.render() for c in self._main],
                    "qosClass": _qos_class(self.pod["spec"]),
                }
                if self._init:
                    status["initContainerStatuses"] = [c.render() for c in self._init]
            if self.reason:
                status["reason"] = self.reason
            if self.message:
                status["message"] = self.message
            return cast(dict[str, Any], json.loads(json.dumps(status)))  # a copy the caller may keep

    def stop(self, grace: float) -> None:
        """Stop every container as a kubelet does on deletion: SIGTERM, then SIGKILL after `grace`."""
        self._stopping.set()
        with self._lock:
            procs = dict(self._procs)
            containers = dict(self._containers)
        engine = self._catalog.engine
        for name in procs:
            self._emit("Normal", "Killing", f"Stopping container {name}", name)
        first = signal.SIGTERM if grace > 0 else signal.SIGKILL
        if engine is not None:
            # The engine signals the container; its client (`podman run`) exits with it.
            for engine_name in containers.values():
                engine.kill(engine_name, first.name.removeprefix("SIG"))
            terminate_all(list(procs.values()), min(grace, MAX_KILL_GRACE), first=None)
            for engine_name in containers.values():
                engine.remove(engine_name)
        else:
            terminate_all(list(procs.values()), min(grace, MAX_KILL_GRACE), first=first)
        self._thread.join(timeout=5)

    # -- the pod's life, on its own thread --

    def _run(self) -> None:
        spec = self.pod["spec"]
        with self._lock:
            self.start_time = rfc3339()
            self._condition("PodScheduled", "True")
        self._emit(
            "Normal", "Scheduled", f"Successfully assigned {self._key} to {NODE}", None
        )  # by the scheduler
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            self._timer = threading.Timer(float(deadline), self._deadline_exceeded, args=(int(deadline),))
            self._timer.daemon = True
            self._timer.start()
        with self._lock:
            self._condition("PodReadyToStartContainers", "True")
            self._condition("Initialized", "False" if self._init else "True")
            self._condition("ContainersReady", "False", "ContainersNotReady")
            self._condition("Ready", "False", "ContainersNotReady")
        for container, status in zip(spec.get("initContainers", []), self._init, strict=True):
            if self._run_container(container, status, init=True) != 0:
                self._finish()
                return
        with self._lock:
            self._condition("Initialized", "True")
        threads = [
            threading.Thread(target=self._run_container, args=(c, s), name=f"pod-{self.name}-{s.name}")
            for c, s in zip(spec["containers"], self._main, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._finish()

    @property
    def _key(self) -> str:
        return f"{self.pod['metadata']['namespace']}/{self.name}"

    def _condition(self, kind: str, value: str, reason: str | None = None) -> None:
        condition = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": rfc3339()}
        if reason:
            condition["reason"] = reason
        old = self._conditions.get(kind)
        if old is None or old["status"] != value or old.get("reason") != reason:
            self._conditions[kind] = condition

    def _finish(self) -> None:
        if self._timer is not None and threading.current_thread() is not self._timer:
            self._timer.cancel()
        with self._lock:
            if self.phase in ("Pending", "Running") and not self._stopping.is_set():
                codes = [c.state.get("terminated", {}).get("exitCode") for c in self._init + self._main]
                if any(code not in (0, None) for code in codes):
                    self.phase = "Failed"
                elif all(code == 0 for code in codes[len(self._init) :]):
                    self.phase = "Succeeded"
            if self.phase in ("Succeeded", "Failed"):
                self._condition("ContainersReady", "False", "PodCompleted")
                self._condition("Ready", "False", "PodCompleted")
                self._condition("PodReadyToStartContainers", "False")

    def _deadline_exceeded(self, seconds: int) -> None:
        with self._lock:
            if self.phase in ("Succeeded", "Failed") or self._stopping.is_set():
                return
            self.phase, self.reason = "Failed", "DeadlineExceeded"
            self.message = f"Pod was active on the node longer than the specified deadline ({seconds}s)"
        self._emit("Warning", "DeadlineExceeded", self.message, None)
        self.stop(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
        self._finish()

    def _wait_until_stopped(self) -> None:
        self._stopping.wait()

    def _run_container(
        self, container: dict[str, Any], status: ContainerStatus, init: bool = False
    ) -> int | None:
        """Pull, configure, start and supervise one container; its exit code, or None if it never ran."""
        name, reference = container["name"], container["image"]
        self._emit("Normal", "Pulling", f'Pulling image "{reference}"', name)
        began = time.monotonic()
        try:
            image = self._catalog.pull(reference)
        except PullError as exc:
            self._pull_failed(status, reference, str(exc))
            return None
        status.image_id = image.image_id
        took = time.monotonic() - began
        how = f"built from {image.dockerfile.name}; {describe(self._catalog.engine)}"
        pulled = f'Successfully pulled image "{reference}" in {took:.1f}s ({how})'
        self._emit("Normal", "Pulled", pulled, name)
        try:
            if self._catalog.engine is None:
                launch = _Launch.build(
                    self.pod, container, image, self._catalog.context, self.folder, self._catalog.node_env
                )
            else:
                launch = _Launch.container(self.pod, container, image, self.folder, self._catalog)
        except ContainerConfigError as exc:
            with self._lock:
                status.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            self._emit("Warning", "Failed", f"Error: {exc}", name)
            self._wait_until_stopped()  # the kubelet keeps retrying; the pod stays Pending
            return None
        policy = self.pod["spec"].get("restartPolicy", "Always")
        backoff = 10.0
        while True:
            code = self._run_once(container, status, launch, init)
            retry = policy == "Always" or (policy == "OnFailure" and code != 0)
            if self._stopping.is_set() or not retry or (init and code == 0):
                return code
            with self._lock:
                status.restart_count += 1
                status.last_state = status.state
                status.state = {
                    "waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {backoff:.0f}s"}
                }
            self._emit(
                "Warning", "BackOff", f"Back-off restarting failed container {name} in pod {self.name}", name
            )
            if self._stopping.wait(backoff):
                return code
            backoff = min(backoff * 2, 300.0)

    def _pull_failed(self, status: ContainerStatus, reference: str, why: str) -> None:
        error = f'failed to pull image "{reference}": {why}'
        with self._lock:
            status.state = {"waiting": {"reason": "ErrImagePull", "message": error}}
        self._emit("Warning", "Failed", f'Failed to pull image "{reference}": {error}', status.name)
        self._emit("Warning", "Failed", "Error: ErrImagePull", status.name)
        if self._stopping.wait(IMAGE_PULL_BACKOFF):
            return
        with self._lock:
            status.state = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{reference}": ErrImagePull: {error}',
                }
            }
        self._emit("Normal", "BackOff", f'Back-off pulling image "{reference}"', status.name)
        self._emit("Warning", "Failed", "Error: ImagePullBackOff", status.name)
        self._wait_until_stopped()

    def _run_once(
        self, container: dict[str, Any], status: ContainerStatus, launch: _Launch, init: bool
    ) -> int:
        name = container["name"]
        log = LogWriter(self.log_path(name))
        self._emit("Normal", "Created", f"Created container: {name}", name)
        started = rfc3339()
        try:
            with self._lock:
                if self._stopping.is_set():
                    raise InterruptedError
                launch.prepare()
                proc = subprocess.Popen(
                    launch.argv,
                    cwd=launch.cwd,
                    env=launch.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # its own process group: killed as one, like a cgroup
                )
                self._procs[name] = proc
                if launch.container_name:
                    self._containers[name] = launch.container_name
        except InterruptedError:
            log.close()
            return 137
        except OSError as exc:
            log.close()
            message = f"failed to create containerd task: exec: {launch.argv[0]!r}: {exc.strerror}"
            with self._lock:
                status.state = {
                    "terminated": {
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": message,
                        "startedAt": started,
                        "finishedAt": rfc3339(),
                    }
                }
            self._emit("Warning", "Failed", f"Error: {message}", name)
            return 128
        pumps = [
            threading.Thread(target=log.pump, args=(stream, pipe), daemon=True)
            for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr))
        ]
        for pump in pumps:
            pump.start()
        container_id = self._created(proc, launch) if launch.container_name else f"local://{proc.pid}"
        with self._lock:
            status.container_id = container_id
            status.state = {"running": {"startedAt": started}}
            if not init and self.phase == "Pending":
                self.phase = "Running"
            if not init and all("running" in c.state for c in self._main):
                self._condition("ContainersReady", "True")
                self._condition("Ready", "True")
        self._emit("Normal", "Started", f"Started container {name}", name)
        if launch.container_name:
            oom = self._watch(proc, launch, name)
        else:
            oom = self._supervise(proc, container, name)
        for pump in pumps:
            pump.join(timeout=5)
        log.close()
        launch.clean_up()
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": rfc3339(),
        }
        if status.container_id:
            terminated["containerID"] = status.container_id
        if code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            terminated["message"] = _log_tail(self.log_path(name))
        with self._lock:
            self._procs.pop(name, None)
            self._containers.pop(name, None)
            status.state = {"terminated": terminated}
            self._condition("ContainersReady", "False", "ContainersNotReady")
            self._condition("Ready", "False", "ContainersNotReady")
        return int(code)

    def _created(self, proc: subprocess.Popen[bytes], launch: _Launch) -> str | None:
        """The engine's id of the container once it exists (None if the client ended first)."""
        assert launch.cidfile is not None and self._catalog.engine is not None
        while proc.poll() is None:
            if launch.cidfile.exists() and (container_id := launch.cidfile.read_text().strip()):
                return f"{self._catalog.engine.name}://{container_id}"
            time.sleep(0.05)
        return None

    def _watch(self, proc: subprocess.Popen[bytes], launch: _Launch, name: str) -> bool:
        """Wait for a container's engine client; True if the container was killed for its memory."""
        proc.wait()
        # The engines do not report an OOM kill (podman's OOMKilled stays false): a SIGKILL that
        # neither the kubelet nor a deadline sent is the memory cgroup's.
        if proc.returncode != 137 or self._stopping.is_set():
            return False
        limit = launch.memory_limit or "none"
        self._emit(
            "Warning",
            "OOMKilling",
            f"Memory cgroup out of memory: Killed process in container {name} (memory limit {limit})",
            name,
        )
        return True

    def _supervise(self, proc: subprocess.Popen[bytes], container: dict[str, Any], name: str) -> bool:
        """Wait for the process; kill its group if its tree outgrows the memory limit (True then)."""
        memory = container.get("resources", {}).get("limits", {}).get("memory")
        limit = parse_quantity(memory) if memory is not None else None
        while proc.poll() is None:
            if limit is not None and (rss := _tree_rss(proc.pid)) > limit:
                terminate(proc, grace=0, first=signal.SIGKILL)
                self._emit(
                    "Warning",
                    "OOMKilling",
                    f"Memory cgroup out of memory: Killed process {proc.pid} ({name}) "
                    f"total-rss:{rss // 1024}kB, limit {memory}",
                    name,
                )
                return True
            time.sleep(MEMORY_POLL)
        # Whatever the main process left behind in its group goes with it, as with a container.
        terminate(proc, grace=0)
        return False


class ContainerConfigError(Exception):
    """The kubelet cannot configure the container (CreateContainerConfigError)."""


@dataclass(frozen=True)
class _Launch:
    """How a container starts: a host process, or an engine's `run` (then `container_name` is set)."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    container_name: str = ""
    container_env: Mapping[str, str] = field(default_factory=dict)
    env_file: Path | None = None
    cidfile: Path | None = None
    memory_limit: str | None = None

    def prepare(self) -> None:
        """Before each start: the env file written, an earlier start's container id file gone."""
        if self.env_file is not None:
            write_env_file(self.env_file, self.container_env)
        if self.cidfile is not None:
            self.cidfile.unlink(missing_ok=True)

    def clean_up(self) -> None:
        if self.env_file is not None:
            self.env_file.unlink(missing_ok=True)

    @classmethod
    def container(
        cls,
        pod: dict[str, Any],
        container: dict[str, Any],
        image: Image,
        folder: Path,
        catalog: ImageCatalog,
    ) -> _Launch:
        """The engine's `run` of a container, with what the pod asks of the node."""
        engine = catalog.engine
        assert engine is not None
        _check_non_root(pod, container, image)
        pod_sc = pod["spec"].get("securityContext") or {}
        sc = container.get("securityContext") or {}
        user = sc.get("runAsUser", pod_sc.get("runAsUser"))
        group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        if user is None and group is not None:
            user = image.user.split(":")[0] or "0"
        user_arg = "" if user is None else f"{user}:{group}" if group is not None else str(user)
        groups = [*pod_sc.get("supplementalGroups", [])]
        if pod_sc.get("fsGroup") is not None:
            groups.append(pod_sc["fsGroup"])
        declared: dict[str, str] = {}
        for var in container.get("env", []):
            declared[var["name"]] = _expand(_env_value(pod, var), declared)
        env = {**catalog.node_env, **declared}
        mounts = [(local, path, read_only) for path, local, read_only in _mounts(pod, container, folder)]
        command = container.get("command")
        args = container.get("args") or []
        if not command and not args and not image.entrypoint and not image.cmd:
            raise ContainerConfigError("no command specified")
        limits = (container.get("resources") or {}).get("limits") or {}
        memory = limits.get("memory")
        cpu = limits.get("cpu")
        capabilities = sc.get("capabilities") or {}
        meta = pod["metadata"]
        name = f"k8s_{container['name']}_{meta['name']}_{meta['namespace']}_{meta['uid'][:8]}"
        files = folder / "engine"
        files.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(
            name=name,
            label=catalog.label,
            image=image.tag,
            hostname=str(meta["name"]),
            ip=HOST_IP,
            env_file=files / f"{container['name']}.env",
            cidfile=files / f"{container['name']}.cid",
            inline_env=[f"{k}={v}" for k, v in env.items() if "\n" in v],
            entrypoint=[_expand(w, declared) for w in command] if command else None,
            args=[_expand(w, declared) for w in args],
            workdir=container.get("workingDir", ""),
            user=user_arg,
            groups=groups,
            read_only=bool(sc.get("readOnlyRootFilesystem")),
            cap_drop=capabilities.get("drop", []),
            cap_add=capabilities.get("add", []),
            no_new_privileges=sc.get("allowPrivilegeEscalation") is False,
            privileged=bool(sc.get("privileged")),
            memory=int(parse_quantity(memory)) if memory is not None else None,
            cpus=str(parse_quantity(cpu)) if cpu is not None else None,
            mounts=mounts,
        )
        return cls(
            engine.run_command(spec),
            dict(engine.env),
            folder,
            container_name=name,
            container_env={k: v for k, v in env.items() if "\n" not in v},
            env_file=spec.env_file,
            cidfile=spec.cidfile,
            memory_limit=memory,
        )

    @classmethod
    def build(
        cls,
        pod: dict[str, Any],
        container: dict[str, Any],
        image: Image,
        context: Path,
        folder: Path,
        node_env: Mapping[str, str] = {},  # noqa: B006 (read only)
    ) -> _Launch:
        _check_non_root(pod, container, image)
        paths = [(path, local) for path, local, _ in _mounts(pod, container, folder)]
        if image.workdir not in ("", "/"):
            paths.append((image.workdir, str(context)))  # the build context holds the image's files
        paths.sort(key=lambda p: len(p[0]), reverse=True)

        def rewrite(value: str) -> str:
            for mount, local in paths:
                if value == mount or value.startswith(mount.rstrip("/") + "/"):
                    return local + value[len(mount.rstrip("/")) :]
            return value

        declared: dict[str, str] = {}
        for var in container.get("env", []):
            declared[var["name"]] = rewrite(_expand(_env_value(pod, var), declared))
        env = {k: rewrite(v) for k, v in image.env}
        for key in HOST_ENV:
            if key in os.environ and (key in ("PATH", "JAVA_HOME") or key not in env):
                env[key] = os.environ[key]
        if "JAVA_HOME" not in os.environ and not Path(env.get("JAVA_HOME", "/")).is_dir():
            env.pop("JAVA_HOME", None)  # the image's Java path means nothing here; `java` on PATH does
        # This interpreter stands in for the image's Python, for the job and whatever it starts.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        env |= node_env
        env |= declared
        env["HOSTNAME"] = str(pod["metadata"]["name"])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(context), declared.get("PYTHONPATH")]))
        # Kubernetes' rules: the pod's command replaces ENTRYPOINT, and then the image's CMD too.
        command: list[str] = container.get("command") or list(image.entrypoint)
        args: list[str] = container.get("args") or ([] if container.get("command") else list(image.cmd))
        argv = [rewrite(_expand(word, declared)) for word in [*command, *args]]
        if not argv:
            raise ContainerConfigError("no command specified")
        if _PYTHON.match(os.path.basename(argv[0])):
            argv[0] = sys.executable
        elif "/" not in argv[0]:
            argv[0] = shutil.which(argv[0], path=env["PATH"]) or argv[0]
        return cls(argv, env, context)


def _check_non_root(pod: dict[str, Any], container: dict[str, Any], image: Image) -> None:
    pod_sc = pod["spec"].get("securityContext") or {}
    sc = container.get("securityContext") or {}
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if not non_root:
        return
    where = (
        f'(pod: "{pod["metadata"]["name"]}_{pod["metadata"]["namespace"]}", container: {container["name"]})'
    )
    if user is not None:
        if int(user) == 0:
            raise ContainerConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    if image.uid is None:
        raise ContainerConfigError(
            f"container has runAsNonRoot and image has non-numeric user ({image.user}), "
            f"cannot verify user is non-root {where}"
        )
    if image.uid == 0:
        raise ContainerConfigError(f"container has runAsNonRoot and image will run as root {where}")


def _mounts(pod: dict[str, Any], container: dict[str, Any], folder: Path) -> list[tuple[str, str, bool]]:
    """Each mountPath of the container, the local folder that stands in for it, and readOnly."""
    paths = []
    for mount in container.get("volumeMounts", []):
        local = folder / "volumes" / mount["name"] / mount.get("subPath", "")
        local.mkdir(parents=True, exist_ok=True)
        local.chmod(0o1777)  # an emptyDir is writable by whichever user the container runs as
        paths.append((mount["mountPath"], str(local), bool(mount.get("readOnly"))))
    return paths


def _env_value(pod: dict[str, Any], var: dict[str, Any]) -> str:
    if "valueFrom" not in var:
        return str(var.get("value", ""))
    path = var["valueFrom"].get("fieldRef", {}).get("fieldPath", "")
    values = {
        "metadata.name": pod["metadata"]["name"],
        "metadata.namespace": pod["metadata"]["namespace"],
        "metadata.uid": pod["metadata"]["uid"],
        "spec.nodeName": NODE,
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.hostIP": HOST_IP,
        "status.podIP": HOST_IP,
    }
    if path not in values:  # the API server refuses the others when the pod is created
        raise ContainerConfigError(f"env {var['name']}: unsupported fieldRef {path!r}")
    return str(values[path])


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) references to variables defined earlier; $$ escapes, unknown ones stay."""
    return _VAR_REF.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def _qos_class(spec: dict[str, Any]) -> str:
    resources = [c.get("resources") or {} for c in spec["containers"]]
    if not any(r.get("limits") or r.get("requests") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k) is not None
        and (r.get("requests") or {}).get(k, r["limits"][k]) == r["limits"][k]
        for r in resources
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _tree_rss(pid: int) -> int:
    """The resident memory of a process and all its descendants, as a memory cgroup counts it."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total


def _log_tail(path: Path) -> str:
    """The kubelet's FallbackToLogsOnError message: the log's last 80 lines, at most 2048 bytes."""
    records = parse_records(path.read_bytes() if path.exists() else b"")[-80:]
    return b"".join(r.render(False) for r in records)[-2048:].decode(errors="replace")
