"""Nothing outlives its run (local_cloud.lifetime): a `make run` killed with SIGKILL leaves no
emulator, step, Airflow run or port behind, and an emulator an earlier run left is stopped at the
next start."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from local_cloud.process import StartupError, running_emulator
from tests.conftest import ROOT

pytestmark = [pytest.mark.emulator, pytest.mark.airflow]

# Starts an emulator on the folder named by argv[1], then waits to be killed.
LAUNCHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from local_cloud.process import running_emulator
    with running_emulator(Path(sys.argv[1]), []) as endpoint:
        print(endpoint, flush=True)
        time.sleep(600)
    """
)


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _cmdline(process: psutil.Process) -> str:
    """A process's command line, or "" once it has ended (a zombie no longer has one)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _emulator_pid(workdir: Path) -> int:
    return json.loads((workdir / "emulator.pids").read_text())["groups"][0]["pid"]


@contextlib.contextmanager
def _launched(command: list[str]):
    """A launcher in its own session, and whatever it left killed at the end of the test."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    family = []
    try:
        yield proc, family
    finally:
        for process in family:
            with contextlib.suppress(psutil.Error):
                process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_killed_run_leaves_nothing_running(tmp_path):
    """SIGKILL `local_cloud.run` while an EMR step runs: the emulator (it held a port), the step's
    Spark and `airflow dags test` all end. Before, the emulator stayed up, orphaned."""
    home = tmp_path / "home"
    command = [sys.executable, "-m", "local_cloud.run", "nightly_training", "--home", str(home)]
    command += ["--storage-root", str(tmp_path / "storage")]
    with _launched(command) as (run, family):

        def emulator_started() -> psutil.Process | None:
            children = psutil.Process(run.pid).children()
            return next((p for p in children if "local_cloud.server" in _cmdline(p)), None)

        emulator = _wait_for(emulator_started, 120, "the emulator")

        def step_running() -> bool:
            return any("spark_jobs" in _cmdline(p) for p in emulator.children(recursive=True))

        _wait_for(step_running, 600, "a training step to start")
        family += psutil.Process(run.pid).children(recursive=True)
        names = {p.pid: _cmdline(p)[:120] for p in family}
        port = int((home / "endpoint").read_text().rsplit(":", 1)[1])
        run.send_signal(signal.SIGKILL)

        _, alive = psutil.wait_procs(family, timeout=60)
        assert not alive, [names[p.pid] for p in alive]
        assert port not in {c.laddr.port for c in psutil.net_connections("tcp") if c.status == "LISTEN"}


def test_an_emulator_an_earlier_run_left_is_stopped_at_the_next_start(tmp_path):
    """Its launcher was killed while the emulator could not notice (stopped): the next start
    finds it by its record and stops it, without touching any other process."""
    with _launched([sys.executable, "-c", LAUNCHER, str(tmp_path)]) as (launcher, family):
        launcher.stdout.readline()
        stale = psutil.Process(_emulator_pid(tmp_path))
        family.append(stale)
        stale.suspend()
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()

        with running_emulator(tmp_path, []) as endpoint:
            assert not stale.is_running() or stale.status() == psutil.STATUS_ZOMBIE
            assert _emulator_pid(tmp_path) != stale.pid
            assert endpoint.startswith("http://127.0.0.1:")


def test_an_emulator_whose_run_is_still_going_is_not_taken_over(tmp_path):
    """Two runs on one folder would share its files: the second is refused, naming the first."""
    with _launched([sys.executable, "-c", LAUNCHER, str(tmp_path)]) as (launcher, family):
        launcher.stdout.readline()
        first = psutil.Process(_emulator_pid(tmp_path))
        family.append(first)
        with pytest.raises(StartupError, match=f"another run \\(pid {launcher.pid}\\) is using {tmp_path}"):
            with running_emulator(tmp_path, []):
                pass
        assert first.is_running() and first.status() != psutil.STATUS_ZOMBIE


def test_a_child_started_to_die_with_its_parent_does(tmp_path):
    """What `make airflow` starts (PostgreSQL, Airflow's services) and `airflow dags test` are
    started so: SIGKILL their launcher and they get their signal."""
    launcher = textwrap.dedent(
        """
        import subprocess, sys, time
        from local_cloud.lifetime import die_with_parent
        child = subprocess.Popen(["sleep", "600"], preexec_fn=die_with_parent())
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    with _launched([sys.executable, "-c", launcher]) as (proc, family):
        child = psutil.Process(int(proc.stdout.readline()))
        family.append(child)
        proc.send_signal(signal.SIGKILL)
        _, alive = psutil.wait_procs([child], timeout=10)
        assert not alive


def test_terminate_signals_the_group_and_kills_what_ignores_it_after_the_grace():
    from local_cloud.lifetime import terminate

    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    parent = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {stubborn!r}]); {stubborn}"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    deadline = time.monotonic() + 10
    while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    (child,) = psutil.Process(proc.pid).children()
    started = time.monotonic()
    terminate(proc, grace=0.5)
    # Both ignored SIGTERM: after the grace the group got SIGKILL, the leader reaped, the child gone.
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - started < 5
    psutil.wait_procs([child], timeout=5)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE

    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    terminate(polite, grace=5)
    assert polite.returncode == -signal.SIGTERM


def test_terminate_all_shares_one_grace_and_kills_what_an_exited_leader_left_behind():
    """A deleted pod's containers stop together (the kubelet's stop): one grace for all of them,
    not one each; and a leader that exits on SIGTERM takes the rest of its group with it."""
    from local_cloud.lifetime import terminate_all

    # Each says "ready" once it ignores SIGTERM; the leader once its child has said so.
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
        "time.sleep(60)"
    )
    leaves_a_child = (
        "import subprocess, sys, time; "
        f"child = subprocess.Popen([sys.executable, '-c', {stubborn!r}], stdout=subprocess.PIPE); "
        "child.stdout.readline(); print('ready', flush=True); time.sleep(60)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE, text=True
        )
        for code in [stubborn] * 3 + [leaves_a_child]
    ]
    assert [p.stdout.readline() for p in procs if p.stdout] == ["ready\n"] * 4
    *stubborn_ones, leader = procs
    (orphan,) = psutil.Process(leader.pid).children()
    started = time.monotonic()
    terminate_all(procs, grace=1.5)
    took = time.monotonic() - started
    assert [p.returncode for p in stubborn_ones] == [-signal.SIGKILL] * 3
    assert leader.returncode == -signal.SIGTERM
    # One grace shared by all: three graces one after another would be 4.5 s.
    assert 1.5 <= took < 4.5, f"three stubborn children took {took:.1f} s: a grace each, not one shared"
    psutil.wait_procs([orphan], timeout=5)
    assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
    for proc in procs:
        proc.stdout.close()  # type: ignore[union-attr]
