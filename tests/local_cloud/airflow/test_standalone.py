"""`make airflow`'s launcher: it prints where the UI is and how to log in, refuses a second copy,
names a port already in use, reports a slow start as it goes, and Ctrl-C or `make airflow-stop`
stops every process it started (PostgreSQL included)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.emulator, pytest.mark.airflow]


def _start(home, port):
    command = [
        sys.executable,
        "-m",
        "local_cloud.airflow.standalone",
        "--home",
        str(home),
        "--port",
        str(port),
    ]
    command += ["--storage-root", str(home / "storage")]
    # A new session, as a terminal gives `make airflow`: Ctrl-C reaches this group only.
    launcher = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines = []
    deadline = time.monotonic() + 300
    for line in launcher.stdout:
        lines.append(line)
        if line.startswith("Airflow UI:") or time.monotonic() > deadline:
            break
    assert lines and lines[-1].startswith(f"Airflow UI: http://127.0.0.1:{port}  (log in as admin / "), lines
    started = {p.pid for p in psutil.Process(launcher.pid).children(recursive=True)}
    return launcher, started, command


def _cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:  # ended since (short-lived helpers do)
        return ""


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _all_gone(launcher, started, port):
    assert launcher.wait(timeout=90) == 0
    alive = [p for p in started if _running(p)]
    assert alive == [], [_cmdline(p) for p in alive]
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_ctrl_c_stops_airflow_and_the_emulator(tmp_path):
    port = free_port()
    launcher, started, command = _start(tmp_path, port)
    names = " ".join(map(_cmdline, started))
    for component in (
        "scheduler",
        "dag-processor",
        "triggerer",
        "api_server",
        "local_cloud.server",
        "postgres",
    ):
        assert component in names, names
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "already running" in second.stdout
    os.killpg(launcher.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    _all_gone(launcher, started, port)


def test_airflow_stop_stops_it_from_another_shell(tmp_path):
    port = free_port()
    launcher, started, _ = _start(tmp_path, port)
    stop = subprocess.run(
        [sys.executable, "-m", "local_cloud.airflow.standalone", "--home", str(tmp_path), "--stop"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stop.returncode == 0 and "stopped" in stop.stdout
    _all_gone(launcher, started, port)
    assert not (tmp_path / "standalone.pid").exists()


def test_stop_sees_a_launcher_that_ended_before_its_parent_reaped_it(tmp_path):
    """A launcher started by a script (as by the test above) stays a zombie until its parent waits
    for it: `--stop` must see it has ended, not wait out its 90 s and then kill its group."""
    from local_cloud.airflow.standalone import PID_FILE, stop

    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (tmp_path / PID_FILE).write_text(str(launcher.pid))
    try:
        stopping = threading.Thread(target=stop, args=(tmp_path,), daemon=True)
        stopping.start()
        stopping.join(timeout=30)
        assert not stopping.is_alive(), "--stop still waits for a launcher that has ended"
        assert psutil.Process(launcher.pid).status() == psutil.STATUS_ZOMBIE  # not reaped by stop
    finally:
        launcher.kill()
        launcher.wait()
    assert not (tmp_path / PID_FILE).exists()


def test_a_port_in_use_is_named_in_one_line_and_nothing_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        command = [
            sys.executable,
            "-m",
            "local_cloud.airflow.standalone",
            "--home",
            str(tmp_path),
            "--port",
            str(port),
        ]
        launcher = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert launcher.returncode == 1
    holder_command = " ".join(psutil.Process().cmdline())[:80]
    assert launcher.stderr.splitlines() == [
        f"error: 127.0.0.1:{port} is already in use by pid {os.getpid()} ({holder_command}): "
        f"stop it, or choose another port (make airflow PORT={port + 1})"
    ]
    assert not (tmp_path / "postgres").exists() and not (tmp_path / "standalone.pid").exists()


def test_a_slow_start_reports_what_is_up_and_times_out_in_one_line(tmp_path):
    """The API server answers, but the triggerer and the DAG processor never become healthy."""
    import http.server
    import json
    import threading

    from local_cloud.airflow.standalone import _wait_healthy
    from local_cloud.process import StartupError

    health = {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}}

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(health).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    service = subprocess.Popen(["sleep", "60"])
    lines: list[str] = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(StartupError, match=r"^Airflow did not become healthy in 3 s; the services' logs"):
            _wait_healthy(url, {"scheduler": service}, tmp_path, 3, lines.append, report_every=1)
    finally:
        server.shutdown()
        service.kill()
    assert lines and lines[-1].endswith("up: metadatabase, scheduler; waiting for triggerer, dag_processor")


def test_a_service_that_exits_while_starting_is_named(tmp_path):
    from local_cloud.airflow.standalone import _wait_healthy
    from local_cloud.process import StartupError

    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    with pytest.raises(
        StartupError, match="^the scheduler exited 3 while starting; its log: .*scheduler.log"
    ):
        _wait_healthy("http://127.0.0.1:1", {"scheduler": exited}, tmp_path, 30, print)
