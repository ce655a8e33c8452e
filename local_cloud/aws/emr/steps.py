"""Runs the steps moto's EMR backend accepts (moto records them but never runs them).

Each step's logs go where EMR puts them under the cluster's LogUri: the step's stdout and stderr
(pushed while it runs), and, once it ends, the YARN container log of its Spark driver, where a
`--deploy-mode cluster` job's own output is on EMR. Here the step runs in client mode, so the driver
is the spark-submit process: its output is both the step's and the driver container's, and the
step's stderr starts with the line YARN's client prints, naming the application.
"""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow
from moto.emr.models import emr_backends

from spark_jobs.session import local_jvm_options, s3a_settings

log = logging.getLogger("local_cloud.emr")

# spark-submit options that only mean something on a YARN cluster: locally the step runs in
# client mode with this interpreter, which already has the job's dependencies.
_CLUSTER_ONLY_OPTIONS = {"--deploy-mode", "--master", "--num-executors", "--queue"}
_CLUSTER_ONLY_CONF = ("spark.pyspark.python", "spark.yarn.", "spark.executorEnv.PYSPARK_PYTHON")
_ACTIVE = ("PENDING", "RUNNING")
# How often a running step's stdout and stderr reach its LogUri: about every 5 minutes on EMR;
# here every few seconds, so a wait that follows them has something to show.
LOG_PUSH_SECONDS = 2.0


def local_spark_submit(args: Sequence[str], master: str, env: Mapping[str, str] = os.environ) -> list[str]:
    """The local command for an EMR command-runner step `spark-submit ...`, with the settings that
    serve `s3://` for a step run with `env` (S3A here, where EMR has EMRFS); the step's own
    `--conf`s come later and win."""
    if not args or args[0] != "spark-submit":
        raise ValueError(
            f"the emulator runs command-runner.jar spark-submit steps only, not {list(args)[:1]}"
        )
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", master]
    for key, value in s3a_settings(env).items():
        command += ["--conf", f"{key}={value}"]
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--archives":
            # Not unpacked here (this interpreter has the same locked dependencies), but a
            # missing archive fails the step as it would on the cluster.
            for archive in next(rest, "").split(","):
                _check_exists(archive.split("#")[0])
        elif arg in _CLUSTER_ONLY_OPTIONS:
            next(rest, None)
        elif arg == "--conf":
            value = next(rest, "")
            if not value.startswith(_CLUSTER_ONLY_CONF):
                command += ["--conf", value]
        else:
            command.append(arg)
    return command


def _check_exists(uri: str) -> None:
    path = uri.removeprefix("file://")
    if "://" not in path and not Path(path).exists():
        raise ValueError(f"spark-submit: file {uri} does not exist")


def _steps_to_run() -> Iterator[tuple[Any, Any]]:
    for _, regions in list(emr_backends.items()):
        for _, backend in list(regions.items()):
            for cluster in list(backend.clusters.values()):
                for step in cluster.steps:
                    if step.state in _ACTIVE:
                        yield cluster, step
                        break  # steps of one cluster run in order


class StepRunner(threading.Thread):
    """Polls moto's EMR backends and runs each cluster's next step to completion."""

    def __init__(
        self,
        put_log: Callable[[str, bytes], None],
        master: str = "local[2]",
        poll: float = 0.2,
        env: Mapping[str, str] | None = None,
        log_push_seconds: float = LOG_PUSH_SECONDS,
    ):
        """`env` is added to each step's environment: what the nodes' instance profile and region
        give a step on EMR (here the emulator's endpoint and credentials). A running step's logs
        are pushed to its LogUri every `log_push_seconds`, and once more when it ends."""
        super().__init__(name="emr-step-runner", daemon=True)
        self._put_log = put_log
        self._env = _step_env() | dict(env or {})
        self._master = master
        self._poll = poll
        self._log_push_seconds = log_push_seconds
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            ran = False
            for cluster, step in list(_steps_to_run()):
                if cluster.state in ("TERMINATING", "TERMINATED"):
                    step.state = "CANCELLED"
                    continue
                try:
                    self._run_step(cluster, step)
                except Exception:  # the emulator's own fault: the step fails, the runner goes on
                    log.exception("cluster %s step %s: the emulator could not run it", cluster.id, step.id)
                    step.state, step.end_date_time = "FAILED", utcnow()
                ran = True
            if not ran:
                time.sleep(self._poll)

    def _run_step(self, cluster: Any, step: Any) -> None:
        step.state, step.start_date_time = "RUNNING", utcnow()
        cluster.state = "RUNNING"
        log.info("cluster %s step %s (%s): starting", cluster.id, step.id, step.name)
        with tempfile.TemporaryDirectory(prefix="emr-step-") as tmp:
            stdout, stderr = Path(tmp) / "stdout", Path(tmp) / "stderr"
            application = application_id(cluster, step)
            try:
                command = local_spark_submit(step.args, self._master, self._env)
                with stdout.open("wb") as out, stderr.open("wb") as err:
                    err.write(f"{_yarn_time()} INFO Client: Submitted application {application}\n".encode())
                    err.flush()
                    proc = subprocess.Popen(command, stdout=out, stderr=err, env=self._env, cwd=tmp)
                    pushed: dict[Path, int] = {}
                    while True:
                        try:
                            code = proc.wait(timeout=self._log_push_seconds)
                            break
                        except subprocess.TimeoutExpired:  # as EMR does, while it runs
                            self._upload_logs(cluster, step, stdout, stderr, pushed)
            except (ValueError, OSError) as exc:
                stderr.write_text(f"{exc}\n")
                code = 1
            self._upload_logs(cluster, step, stdout, stderr)
            self._upload_driver_logs(cluster, application, stdout, stderr)
        step.state = "COMPLETED" if code == 0 else "FAILED"
        step.end_date_time = utcnow()
        log.info("cluster %s step %s: %s (exit %s)", cluster.id, step.id, step.state, code)
        if code != 0 and step.action_on_failure in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"):
            cluster.terminate()
        if code != 0 and step.action_on_failure in (
            "CANCEL_AND_WAIT",
            "TERMINATE_CLUSTER",
            "TERMINATE_JOB_FLOW",
        ):
            for later in cluster.steps:
                if later.state in _ACTIVE:
                    later.state = "CANCELLED"
        if cluster.state == "RUNNING" and not any(s.state in _ACTIVE for s in cluster.steps):
            cluster.state = "WAITING"

    def _upload_logs(
        self, cluster: Any, step: Any, stdout: Path, stderr: Path, pushed: dict[Path, int] | None = None
    ) -> None:
        """Where EMR puts them: <LogUri>/<cluster id>/steps/<step id>/{stdout,stderr}.gz. With
        `pushed` (what each file's size was at the last push), a file that has not grown is left."""
        if not cluster.log_uri:
            return
        prefix = f"{cluster.log_uri.rstrip('/')}/{cluster.id}/steps/{step.id}"
        for path in (stdout, stderr):
            data = path.read_bytes() if path.exists() else b""  # none if the step never started
            if pushed is not None:
                if pushed.get(path) == len(data):
                    continue
                pushed[path] = len(data)
            try:
                # mtime 0: the same log gives the same object (the emulator's S3 keeps each one it gets).
                self._put_log(f"{prefix}/{path.name}.gz", gzip.compress(data, mtime=0))
            except Exception:  # a log that cannot be written must not leave the step hanging
                log.exception("could not write %s/%s.gz", prefix, path.name)

    def _upload_driver_logs(self, cluster: Any, application: str, stdout: Path, stderr: Path) -> None:
        """<LogUri>/<cluster id>/containers/<application>/<its first container>/{stdout,stderr}.gz:
        the driver's (the application master's container, in cluster mode)."""
        if not cluster.log_uri:
            return
        container = driver_container(application)
        prefix = f"{cluster.log_uri.rstrip('/')}/{cluster.id}/containers/{application}/{container}"
        for path in (stdout, stderr):
            data = path.read_bytes() if path.exists() else b""
            try:
                self._put_log(f"{prefix}/{path.name}.gz", gzip.compress(data, mtime=0))
            except Exception:
                log.exception("could not write %s/%s.gz", prefix, path.name)


def application_id(cluster: Any, step: Any) -> str:
    """YARN's id of the step's application: the cluster's start in ms and the step's number."""
    started = int(cluster.creation_datetime.timestamp() * 1000)
    return f"application_{started}_{cluster.steps.index(step) + 1:04d}"


def driver_container(application: str) -> str:
    """The first container of the application's first attempt: its driver, in cluster mode."""
    return f"container_{application.removeprefix('application_')}_01_000001"


def _yarn_time() -> str:
    return time.strftime("%y/%m/%d %H:%M:%S", time.gmtime())


def _step_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["SPARK_LOCAL_IP"] = "127.0.0.1"  # the emulator and its steps stay on loopback
    if "SPARK_SUBMIT_OPTS" not in env:  # a node's JVM runs long; a local step's, on a sample, does not
        env["SPARK_SUBMIT_OPTS"] = local_jvm_options({"SPARK_LOCAL_JIT": "quick"} | env)
    return env
