"""A container engine (podman, or docker) for the emulator's kubelet: real images, real containers.

The kubelet builds the image a pod names from the Dockerfile the catalog maps it to (the engine's
layer cache makes a rebuild after a code change take seconds) and runs each container with what a
node enforces: the securityContext (read-only root, user, capabilities, no privilege escalation),
the memory and CPU limits, emptyDir volumes and the env. Containers use the host's network, so
they reach the emulator on 127.0.0.1 as the host processes did. Every container carries a label
naming the emulator's pods folder: what a killed emulator left behind is removed by the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Settings measured on these machines (runc, not crun, on a cgroup v1 "hybrid" layout; ulimits under
# the host's hard limit; the host's CA bundle inside builds, for pip behind a TLS proxy). Used with
# podman when runc is installed and the user named no settings file of their own.
PODMAN_CONF = ROOT / "docker" / "standin" / "containers.conf"
LABEL = "local-cloud.pods"
BUILD_TIMEOUT = 1800.0  # seconds: a cold build of the job image downloads Java and pyspark


class EngineError(RuntimeError):
    """The engine refused: the message is the last lines it printed."""


@dataclass(frozen=True)
class Engine:
    command: str  # podman or docker
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return os.path.basename(self.command)

    def __call__(self, *args: str, timeout: float = 120.0, env: Mapping[str, str] | None = None) -> str:
        """Run an engine command; its stdout, or EngineError with the tail of what it printed."""
        proc = subprocess.run(
            [self.command, *args],
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise EngineError("\n".join(lines[-15:]) or f"{self.name} {args[0]} exited {proc.returncode}")
        return proc.stdout

    def build(self, dockerfile: Path, context: Path, tag: str) -> tuple[str, str]:
        """Build `tag` from a Dockerfile (the base image from the local store or a registry); its
        id and the user it runs as (a base image's USER counts too)."""
        build = ["build", "--network", "host", "-q", "-f", str(dockerfile), "-t", tag, str(context)]
        self(*build, timeout=BUILD_TIMEOUT)
        image_id, _, user = (
            self("image", "inspect", "--format", "{{.Id}} {{.Config.User}}", tag).strip().partition(" ")
        )
        return image_id, user

    def run_command(self, spec: RunSpec) -> list[str]:
        """The `run` command line of one container (the env's values go through spec.env_file)."""
        argv = [self.command, "run", "--rm", "--pull=never", "--network", "host", "--name", spec.name]
        argv += ["--label", f"{LABEL}={spec.label}", "--cidfile", str(spec.cidfile)]
        # As the kubelet's /etc/hosts does, the pod's name resolves to its IP (Spark looks it up).
        argv += ["--hostname", spec.hostname, "--add-host", f"{spec.hostname}:{spec.ip}"]
        argv += ["--env-file", str(spec.env_file)]
        argv += [arg for pair in spec.inline_env for arg in ("--env", pair)]
        if spec.read_only:
            argv.append("--read-only")
            if self.name == "podman":  # podman adds writable /tmp, /var/tmp and /run; Kubernetes does not
                argv.append("--read-only-tmpfs=false")
        if spec.user:
            argv += ["--user", spec.user]
        for group in spec.groups:
            argv += ["--group-add", str(group)]
        argv += [arg for cap in spec.cap_drop for arg in ("--cap-drop", cap)]
        argv += [arg for cap in spec.cap_add for arg in ("--cap-add", cap)]
        if spec.no_new_privileges:
            argv += ["--security-opt", "no-new-privileges"]
        if spec.privileged:
            argv.append("--privileged")
        if spec.memory is not None:  # no swap on a Kubernetes node: the limit is the memory there is
            argv += ["--memory", str(spec.memory), "--memory-swap", str(spec.memory)]
        if spec.cpus is not None:
            argv += ["--cpus", spec.cpus]
        for host, path, read_only in spec.mounts:
            argv += ["--volume", f"{host}:{path}" + (":ro" if read_only else "")]
        if spec.workdir:
            argv += ["--workdir", spec.workdir]
        if spec.entrypoint is not None:  # replaces the image's ENTRYPOINT, and its CMD with it
            argv += ["--entrypoint", json.dumps(spec.entrypoint)]
        return [*argv, spec.image, *spec.args]

    def kill(self, name: str, signal: str) -> None:
        with contextlib.suppress(EngineError, subprocess.TimeoutExpired):
            self("kill", "--signal", signal, name, timeout=30)

    def remove(self, name: str) -> None:
        """Kill and remove a container now (`rm --force` alone would first wait out a stop timeout)."""
        self.kill(name, "KILL")
        with contextlib.suppress(EngineError, subprocess.TimeoutExpired):
            self("rm", "--force", "--ignore", name, timeout=60)

    def remove_labelled(self, label: str) -> list[str]:
        """Remove every container of an emulator (running or not); the names removed."""
        try:
            found = self("ps", "--all", "--filter", f"label={LABEL}={label}", "--format", "{{.Names}}")
        except (EngineError, subprocess.TimeoutExpired):
            return []
        names = found.split()
        for name in names:
            self.remove(name)
        return names


@dataclass(frozen=True)
class RunSpec:
    """One container as the engine runs it."""

    name: str
    label: str
    image: str
    hostname: str
    ip: str
    env_file: Path
    cidfile: Path
    inline_env: Sequence[str] = ()  # NAME=VALUE pairs an env file cannot hold
    entrypoint: list[str] | None = None
    args: Sequence[str] = ()
    workdir: str = ""
    user: str = ""
    groups: Sequence[int] = ()
    read_only: bool = False
    cap_drop: Sequence[str] = ()
    cap_add: Sequence[str] = ()
    no_new_privileges: bool = False
    privileged: bool = False
    memory: int | None = None
    cpus: str | None = None
    mounts: Sequence[tuple[str, str, bool]] = ()


def find_engine(choice: str = "auto", environ: Mapping[str, str] = os.environ) -> Engine | None:
    """The engine pods run on: `podman` or `docker` by name, the first that answers for `auto`,
    None for `process` (host processes) or when `auto` finds none."""
    if choice == "process":
        return None
    names = ("podman", "docker") if choice == "auto" else (choice,)
    for name in names:
        command = shutil.which(name, path=environ.get("PATH"))
        if command is None:
            continue
        env = dict(environ)
        # Debian puts runc in /usr/sbin, which a non-login PATH may lack.
        sbin = os.pathsep.join(filter(None, [env.get("PATH"), "/usr/sbin", "/sbin"]))
        if name == "podman" and "CONTAINERS_CONF" not in env and shutil.which("runc", path=sbin):
            env["CONTAINERS_CONF"] = str(PODMAN_CONF)
        engine = Engine(command, env)
        try:
            engine("info", "--format", "{{json .}}", timeout=30)
        except (EngineError, subprocess.TimeoutExpired, OSError):
            continue
        return engine
    if choice != "auto":
        raise EngineError(f"container engine {choice!r} is not installed or does not answer")
    return None


class Images:
    """Images built on demand, one build at a time per Dockerfile."""

    def __init__(self, engine: Engine, context: Path):
        self.engine = engine
        self.context = context
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def build(self, repository: str, dockerfile: Path) -> tuple[str, str, str]:
        """(tag, image id, configured user) of the image built from `dockerfile`."""
        with self._guard:
            lock = self._locks.setdefault(dockerfile, threading.Lock())
        tag = f"localhost/local-cloud/{repository.replace('/', '-')}:latest"
        with lock:
            return (tag, *self.engine.build(dockerfile, self.context, tag))


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    """The env for `--env-file`, owner-only, so no value shows in a process list (values with a
    newline, which such a file cannot hold, go on the command line instead: RunSpec.inline_env)."""
    path.touch(mode=0o600)
    path.write_text("".join(f"{name}={value}\n" for name, value in env.items()))


def describe(engine: Engine | None) -> str:
    """One line saying how pods run, for logs and the first pod event."""
    if engine is None:
        return "pods run as host processes: no container engine (podman or docker) was found"
    return f"pods run as containers ({engine.name})"


def prepare(images: Mapping[str, Path], context: Path = ROOT) -> int:
    """Make pods ready to run as containers: the base image (a stand-in where no registry answers)
    and each image built once, so the first pod does not wait minutes for a cold build."""
    engine = find_engine(os.environ.get("LOCAL_CLOUD_POD_RUNTIME", "auto"))
    if engine is None:
        print(f"{describe(None)}: install podman or docker to run them as containers", flush=True)
        return 0
    started = time.monotonic()
    subprocess.run(
        [str(ROOT / "docker" / "standin" / "build.sh"), engine.command], env=dict(engine.env), check=True
    )
    builds = Images(engine, context)
    for repository, dockerfile in images.items():
        tag, image_id, _ = builds.build(repository, dockerfile)
        print(f"{tag} ({image_id[:12]}) from {dockerfile.relative_to(context)}", flush=True)
    print(f"{describe(engine)}: images ready in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    from local_cloud.process import DEFAULT_IMAGES

    try:
        sys.exit(prepare(DEFAULT_IMAGES))
    except (EngineError, subprocess.CalledProcessError) as exc:
        sys.exit(f"error: the pods' images could not be made ready: {exc}")
