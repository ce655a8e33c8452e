"""Airflow as users run it, offline: `python -m local_cloud.standalone` (what `make airflow` runs).

Starts the local cloud emulator, then `airflow standalone` (scheduler, DAG processor, triggerer,
API server; SQLite; LocalExecutor) on 127.0.0.1 with the project's DAGs and plugins and the same
connections and Variables as `local_cloud.run`, prints the UI address and the login, and runs
until Ctrl-C, SIGTERM or `--stop` (what `make airflow-stop` runs). Airflow runs in its own process
group and the emulator in another; stopping stops both groups, so no scheduler or API server is
left holding its port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from local_cloud.airflow_offline import AIRFLOW, offline_airflow
from local_cloud.process import ROOT

HOME = ROOT / ".airflow"
PID_FILE = "standalone.pid"
PASSWORDS = "simple_auth_manager_passwords.json.generated"
USER = "admin"


def standalone_env(base: Mapping[str, str], port: int) -> dict[str, str]:
    """airflow_env plus what a long-running local Airflow needs on a 2-core machine."""
    return {
        **base,
        # The `airflow` the standalone command starts for each component is this environment's.
        "PATH": os.pathsep.join([str(Path(AIRFLOW).parent), base.get("PATH", os.defpath)]),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        # Look for new DAG files every 30 s rather than 5 min: this is a development setup.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    }


@dataclass
class Running:
    url: str
    password: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def running_airflow(env: Mapping[str, str], home: Path, port: int, timeout: float = 180) -> Iterator[Running]:
    """`airflow standalone` in its own process group, until the block ends; then the group stops."""
    log = (home / "standalone.log").open("ab")
    command = [AIRFLOW, "standalone"]
    proc = subprocess.Popen(command, env=dict(env), cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, home, timeout)
        password = json.loads((home / PASSWORDS).read_text())[USER]
        yield Running(url, password, proc)
    finally:
        stop_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        log.close()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], home: Path, timeout: float) -> None:
    """Until the API server says every component is healthy and the admin's password exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow standalone exited {proc.returncode}; see {home / 'standalone.log'}")
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
                health = json.load(response)
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            healthy = all(health.get(p, {}).get("status") == "healthy" for p in parts)
            if healthy and (home / PASSWORDS).exists():
                return
        time.sleep(1)
    raise RuntimeError(f"Airflow did not become healthy in {timeout:.0f} s; see {home / 'standalone.log'}")


def stop_group(pgid: int, grace: float = 10) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def stop(home: Path) -> int:
    """Stop the `make airflow` running from `home`: its launcher cleans up both groups."""
    pid_file = home / PID_FILE
    if not pid_file.exists():
        print("no local Airflow is running (no .airflow/standalone.pid)")
        return 0
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):  # the launcher is stuck: stop its groups ourselves
        stop_group(pid, grace=5)
    pid_file.unlink(missing_ok=True)
    print("local Airflow stopped")
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_cloud.standalone", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, default=8080, help="the UI and API port on 127.0.0.1")
    parser.add_argument("--storage-root", default=str(ROOT / "storage"))
    parser.add_argument("--input", default=str(ROOT / "data" / "bank" / "bank-full.csv"))
    parser.add_argument("--home", type=Path, default=HOME, help="AIRFLOW_HOME and the emulator's files")
    parser.add_argument("--stop", action="store_true", help="stop the one already running")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    if args.stop:
        return stop(home)

    pid_file = home / PID_FILE
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        print(f"error: a local Airflow is already running (pid {pid_file.read_text()}); make airflow-stop")
        return 1
    # Ctrl-C and SIGTERM (`--stop`) both end the `with` blocks below, which stop what they started.
    signal.signal(signal.SIGTERM, _interrupt)
    pid_file.write_text(str(os.getpid()))
    try:
        with offline_airflow(home, ROOT / args.storage_root, ROOT / args.input) as offline_env:
            env = standalone_env(offline_env, args.port)
            print("starting Airflow (about 30 s) ...", flush=True)
            with running_airflow(env, home, args.port) as airflow:
                print(
                    f"\nAirflow UI: {airflow.url}  (log in as {USER} / {airflow.password})\n"
                    f"DAGs start paused: unpause them in the UI. Logs: {home}/standalone.log\n"
                    "Ctrl-C (or `make airflow-stop`) stops Airflow and the emulator.",
                    flush=True,
                )
                while airflow.process.poll() is None:
                    time.sleep(1)
                print(f"airflow standalone exited {airflow.process.returncode}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        print("\nstopping Airflow and the emulator ...", flush=True)
        return 0
    finally:
        pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
