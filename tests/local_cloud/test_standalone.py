"""`make airflow`'s launcher: it prints where the UI is and how to log in, refuses a second copy,
and Ctrl-C or `make airflow-stop` stops every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow


def _start(home, port):
    command = [sys.executable, "-m", "local_cloud.standalone", "--home", str(home), "--port", str(port)]
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
    for component in ("scheduler", "dag-processor", "triggerer", "api_server", "local_cloud.server"):
        assert component in names, names
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "already running" in second.stdout
    os.killpg(launcher.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    _all_gone(launcher, started, port)


def test_airflow_stop_stops_it_from_another_shell(tmp_path):
    port = free_port()
    launcher, started, _ = _start(tmp_path, port)
    stop = subprocess.run(
        [sys.executable, "-m", "local_cloud.standalone", "--home", str(tmp_path), "--stop"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stop.returncode == 0 and "stopped" in stop.stdout
    _all_gone(launcher, started, port)
    assert not (tmp_path / "standalone.pid").exists()
