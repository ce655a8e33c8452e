"""Airflow as users run it, offline: `python -m local_cloud.airflow.standalone` (what `make airflow` runs).

Starts PostgreSQL (the metadata database, local_cloud.airflow.metadata_db), the local cloud emulator, and
Airflow's four services, one process each as a deployment runs them (api-server, scheduler,
dag-processor, triggerer; LocalExecutor), all on 127.0.0.1 only: the log servers of the scheduler
and the triggerer are not started (they bind every interface; on one machine the API server reads
task logs from disk). The deployment's Variables and connections are written into the metadata
database, so Admin shows them and a person can edit them there. It prints the UI address and the
login, and runs until Ctrl-C, SIGTERM or `--stop` (what `make airflow-stop` runs). Airflow, the
emulator and PostgreSQL each run in their own process group; stopping stops all three.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_cloud.airflow.metadata_db import running_postgres
from local_cloud.airflow.offline import AIRFLOW, DEFAULT_SPEC, DEFAULT_STORAGE_ROOT, offline_airflow
from local_cloud.lifetime import alive, die_with_parent, stop_group
from local_cloud.process import ROOT, StartupError

HOME = ROOT / ".airflow"
PID_FILE = "standalone.pid"
PASSWORDS = "simple_auth_manager_passwords.json.generated"
USER = "admin"
# One process per service, as a deployment runs them. No log servers: they bind 0.0.0.0.
SERVICES: Mapping[str, list[str]] = {
    "api-server": ["api-server", "--host", "127.0.0.1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
# What /api/v2/monitor/health reports on, besides the API server answering at all.
HEALTH_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def standalone_env(base: Mapping[str, str], port: int) -> dict[str, str]:
    """The offline environment, for long-running services on a 2-core machine, with the deployment's
    Variables and connections left to the metadata database (store_settings)."""
    env = {k: v for k, v in base.items() if not k.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_"))}
    return env | {
        # The `airflow` each service runs is this environment's.
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


def deployment_settings(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """The Variables and connections the offline environment carries as AIRFLOW_VAR_*/AIRFLOW_CONN_*."""
    variables = {
        k.removeprefix("AIRFLOW_VAR_").lower(): v for k, v in env.items() if k.startswith("AIRFLOW_VAR_")
    }
    connections = {
        k.removeprefix("AIRFLOW_CONN_").lower(): json.loads(v)
        for k, v in env.items()
        if k.startswith("AIRFLOW_CONN_")
    }
    return variables, connections


def store_settings(base: Mapping[str, str], env: Mapping[str, str], home: Path) -> list[str]:
    """Write the deployment's Variables and connections into the metadata database (overwriting:
    the emulator's address changes at every start); return their names."""
    variables, connections = deployment_settings(base)
    names = []
    for kind, items, flags in (
        ("variables", variables, ["--action-on-existing-key", "overwrite"]),
        ("connections", connections, ["--overwrite"]),
    ):
        path = home / f"{kind}.import.json"
        # The connections hold credentials: readable by this user only, and gone once imported.
        path.touch(mode=0o600)
        try:
            path.write_text(json.dumps(items))
            subprocess.run(
                [AIRFLOW, kind, "import", *flags, str(path)],
                env=dict(env),
                cwd=ROOT,
                check=True,
                capture_output=True,
                timeout=300,
            )
        finally:
            path.unlink(missing_ok=True)
        names += sorted(items)
    return names


def check_port_free(port: int) -> None:
    """Refuse to start when something already listens on 127.0.0.1:port, naming it."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise StartupError(
                f"127.0.0.1:{port} is already in use{_listener(port)}: stop it, or choose another port "
                f"(make airflow PORT={port + 1})"
            ) from None


def _listener(port: int) -> str:
    import psutil

    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                return f" by pid {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline())[:80]})"
    return ""


@dataclass
class Running:
    url: str
    password: str
    endpoint: str
    processes: dict[str, subprocess.Popen[bytes]]
    settings: list[str]


@contextlib.contextmanager
def running_services(
    env: Mapping[str, str], home: Path, port: int, timeout: float, progress: Callable[[str], None]
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """The four services in one new process group, until the block ends; then the group stops."""
    logs = home / "services"
    logs.mkdir(exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    group = 0
    try:
        for name, args in SERVICES.items():
            command = [AIRFLOW, *args, *(["--port", str(port)] if name == "api-server" else [])]
            with (logs / f"{name}.log").open("ab") as log:
                proc = subprocess.Popen(
                    command,
                    env=dict(env),
                    cwd=ROOT,
                    stdout=log,
                    stderr=log,
                    process_group=group,
                    preexec_fn=die_with_parent(),  # each stops its own workers on SIGTERM
                )
            group = group or proc.pid
            processes[name] = proc
        _wait_healthy(f"http://127.0.0.1:{port}", processes, home, timeout, progress)
        yield processes
    finally:
        if group:
            stop_group(group)


def _wait_healthy(
    url: str,
    processes: Mapping[str, subprocess.Popen[bytes]],
    home: Path,
    timeout: float,
    progress: Callable[[str], None],
    report_every: float = 15,
) -> None:
    """Until the API server says every service is healthy and the admin's password exists; every
    `report_every` seconds, say what is up and what is not yet."""
    started = time.monotonic()
    next_report = started + report_every
    while (elapsed := time.monotonic() - started) < timeout:
        for name, proc in processes.items():
            if proc.poll() is not None:
                raise StartupError(
                    f"the {name} exited {proc.returncode} while starting; its log: "
                    f"{home / 'services' / f'{name}.log'}"
                )
        health: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
                health = json.load(response)
        up = [p for p in HEALTH_PARTS if health.get(p, {}).get("status") == "healthy"]
        if len(up) == len(HEALTH_PARTS) and (home / PASSWORDS).exists():
            return
        if time.monotonic() >= next_report:
            waiting = [p for p in HEALTH_PARTS if p not in up] if health else ["the API server to answer"]
            done = ", ".join(up) or "nothing yet"
            progress(f"  {elapsed:.0f} s: up: {done}; waiting for {', '.join(waiting)}")
            next_report += report_every
        time.sleep(min(1, report_every))
    raise StartupError(
        f"Airflow did not become healthy in {timeout:.0f} s; the services' logs are in {home / 'services'}"
    )


@contextlib.contextmanager
def local_airflow(
    home: Path,
    storage_root: str | Path,
    input_uri: Path,
    port: int,
    timeout: float = 900,
    progress: Callable[[str], None] = print,
    spec: Path = DEFAULT_SPEC,
) -> Iterator[Running]:
    """PostgreSQL, the emulator and the Airflow services of `make airflow`, until the block ends."""
    check_port_free(port)
    with (
        running_postgres(home / "postgres") as database_url,
        offline_airflow(home, storage_root, input_uri, database_url, spec) as (offline_env, endpoint),
    ):
        # Under the scheduler a reschedule-mode wait polled every few seconds can be failed by
        # Airflow's own race (apache/airflow#71172): keep the DAG's interval there.
        offline_env.pop("AIRFLOW_VAR_ML_EMR_POLL_SECONDS")
        env = standalone_env(offline_env, port)
        settings = store_settings(offline_env, env, home)
        with running_services(env, home, port, timeout, progress) as processes:
            password = json.loads((home / PASSWORDS).read_text())[USER]
            yield Running(f"http://127.0.0.1:{port}", password, endpoint, processes, settings)


def stop(home: Path) -> int:
    """Stop the `make airflow` running from `home`: its launcher cleans up every group."""
    pid_file = home / PID_FILE
    if not pid_file.exists():
        print("no local Airflow is running (no .airflow/standalone.pid)")
        return 0
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.2)
    if alive(pid):  # the launcher is stuck: stop its group ourselves
        stop_group(pid, grace=5)
    pid_file.unlink(missing_ok=True)
    print("local Airflow stopped")
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_cloud.airflow.standalone", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, default=8080, help="the UI and API port on 127.0.0.1")
    parser.add_argument(
        "--storage-root", default=DEFAULT_STORAGE_ROOT, help="an s3:// URI in the emulator, or a local folder"
    )
    parser.add_argument("--input", default=str(ROOT / "data" / "bank" / "bank-full.csv"))
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), help="the input's dataset spec")
    parser.add_argument(
        "--home", type=Path, default=HOME, help="AIRFLOW_HOME, the database and the emulator's files"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the services")
    parser.add_argument("--stop", action="store_true", help="stop the one already running")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    if args.stop:
        return stop(home)

    pid_file = home / PID_FILE
    if pid_file.exists() and alive(int(pid_file.read_text())):
        print(f"error: a local Airflow is already running (pid {pid_file.read_text()}); make airflow-stop")
        return 1
    # Ctrl-C and SIGTERM (`--stop`) both end the `with` block below, which stops what it started.
    signal.signal(signal.SIGTERM, _interrupt)
    pid_file.write_text(str(os.getpid()))
    try:
        print("starting PostgreSQL, the emulator and Airflow (about a minute) ...", flush=True)
        with local_airflow(
            home,
            args.storage_root if "://" in args.storage_root else ROOT / args.storage_root,
            ROOT / args.input,
            args.port,
            args.timeout,
            _say,
            ROOT / args.spec,
        ) as airflow:
            print(
                f"\nAirflow UI: {airflow.url}  (log in as {USER} / {airflow.password})\n"
                f"Variables and connections (Admin): {', '.join(airflow.settings)}; edits there last "
                "until the next start.\n"
                f"DAGs start paused: unpause them in the UI. Logs: {home / 'services'}\n"
                "Ctrl-C (or `make airflow-stop`) stops Airflow, the emulator and PostgreSQL.",
                flush=True,
            )
            while all(p.poll() is None for p in airflow.processes.values()):
                time.sleep(1)
            ended = [f"{n} exited {p.poll()}" for n, p in airflow.processes.items() if p.poll() is not None]
            print(f"error: {', '.join(ended)}; logs in {home / 'services'}", file=sys.stderr)
            return 1
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping Airflow, the emulator and PostgreSQL ...", flush=True)
        return 0
    finally:
        pid_file.unlink(missing_ok=True)


def _say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
