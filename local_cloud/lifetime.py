"""Nothing outlives its run: what a launcher starts ends when the launcher dies, by any signal,
and what an earlier, killed run left behind is found and stopped at the next start.

A SIGKILL (a CI timeout, the OOM killer) gives the launcher no chance to clean up, so:
- the emulator watches its parent (`watch_parent`, any OS) and shuts down, with its steps, Lambda
  sandboxes and pods, when the parent is gone;
- other children (`airflow dags test`, Airflow's services, PostgreSQL) ask Linux for a signal when
  their parent dies (`die_with_parent`);
- launchers record the process groups they start (`record`), and the next start stops any that
  are still running (`reap`): a process counts as the recorded one only if its start time matches,
  so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

_PR_SET_PDEATHSIG = 1


def watch_parent(parent_pid: int, on_orphaned: Callable[[], None], every: float = 0.5) -> None:
    """Call `on_orphaned` once `parent_pid` is no longer this process's parent (it died and the
    process was re-parented)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every)
        on_orphaned()

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` for a child started from the main thread: Linux sends it `sig` when the
    launcher dies. Elsewhere it does nothing (`reap` still stops it at the next start)."""
    parent = os.getpid()

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
            if os.getppid() != parent:  # the launcher died before the signal was armed
                os.kill(os.getpid(), sig)

    return preexec


class InUse(RuntimeError):
    """The launcher that recorded the groups is still running: they are its, not leftovers."""


def record(path: Path, pids: list[int]) -> None:
    """Remember this launcher and the process groups led by `pids` (with start times) in `path`."""
    entries = {
        "launcher": _identity(os.getpid()),
        "groups": [_identity(pid) for pid in pids],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    tmp.replace(path)


def reap(path: Path, grace: float = 10) -> list[int]:
    """Stop the process groups recorded in `path` that are still running; return their leaders'
    pids, and remove the file. Raises InUse if the launcher that recorded them still runs."""
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())
    except ValueError:
        entries = {}
    launcher = entries.get("launcher")
    if launcher and launcher["pid"] != os.getpid() and _running(launcher):
        raise InUse(f"another run (pid {launcher['pid']}) is using {path.parent}")
    stopped = []
    for group in entries.get("groups", []):
        if _running(group):
            stop_group(group["pid"], grace)
            stopped.append(group["pid"])
    path.unlink(missing_ok=True)
    return stopped


def _identity(pid: int) -> dict[str, float]:
    return {"pid": pid, "started": psutil.Process(pid).create_time()}


def _running(identity: dict[str, float]) -> bool:
    """Whether that very process (not a later one given the same pid) is still running."""
    try:
        started = psutil.Process(int(identity["pid"])).create_time()
    except psutil.Error:
        return False
    return started == identity["started"] and alive(int(identity["pid"]))


def alive(pid: int) -> bool:
    """Whether `pid` still runs. One that has exited but is not yet reaped by its parent (a
    zombie) has ended: `os.kill(pid, 0)` still succeeds on it, so waiting on that would wait for
    its parent instead."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def terminate(
    proc: subprocess.Popen[Any], grace: float, first: int = signal.SIGTERM, leader_only: bool = False
) -> None:
    """Stop one child started in a session of its own (see `terminate_all`)."""
    terminate_all([proc], grace, first, leader_only)


def terminate_all(
    procs: Sequence[subprocess.Popen[Any]],
    grace: float,
    first: int | None = signal.SIGTERM,
    leader_only: bool = False,
) -> None:
    """Stop children each started in a session of its own, together: `first` to each one's process
    group (or, for a server that stops its own workers, such as PostgreSQL's postmaster, to the
    leader only; None when the caller has asked them already, through a container engine say),
    then SIGKILL to every group once its leader has exited or the `grace` seconds they share have
    passed: what a leader left behind goes with it, as with a container's cgroup. Every leader is
    reaped (a zombie leader would keep its group alive to killpg)."""
    if first is not None:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if leader_only:
                        proc.send_signal(first)
                    else:
                        os.killpg(proc.pid, first)
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_group(pgid: int, grace: float = 10) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        os.killpg(pgid, signal.SIGCONT)  # a stopped process handles its SIGTERM only once resumed
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
