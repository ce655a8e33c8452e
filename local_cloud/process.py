"""Start the emulator in its own process group and stop that group, whatever happens in between."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from local_cloud.lifetime import InUse, reap, record, terminate

ROOT = Path(__file__).resolve().parents[1]
# The images pods may run: repository name -> Dockerfile (built from the repository root).
DEFAULT_IMAGES: Mapping[str, Path] = {"ml-scaling-jobs": ROOT / "docker" / "jobs.Dockerfile"}
# The EMR security configuration every emulator has, as the platform team creates it on AWS
# (docs/aws.md) and Variable ml_emr_security_configuration names it.
SECURITY_CONFIGURATION = "ml-scaling-imdsv2"
SECURITY_CONFIGURATION_FILE = ROOT / "aws" / "emr-security-configuration.json"
# What the platform team applies once to the cluster (k8s/), before any pod runs there.
MANIFESTS = (ROOT / "k8s" / "scoring.yaml",)


class StartupError(RuntimeError):
    """An expected failure to start a local service (a port in use, a server that exits): the
    launchers print it as one line, without a traceback."""


@contextlib.contextmanager
def running_emulator(
    workdir: Path,
    buckets: list[str],
    roles: Sequence[str] = (),
    state_dir: Path | None = None,
    images: Mapping[str, Path] | None = None,
    iam: tuple[str, str] | None = None,
    policies: Path | None = None,
    pod_runtime: str | None = None,
    stack: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Yield the endpoint URL of a fresh emulator; its log is workdir/emulator.log, the AWS
    requests it validated are in workdir/requests.jsonl, its Lambda sandboxes under
    workdir/lambda. With a `state_dir`, Lambda functions outlive it (local_cloud.aws.state). Pods run
    `images` (DEFAULT_IMAGES if None), with their logs and volumes under workdir/pods and their
    Kubernetes requests journalled in workdir/kubernetes.jsonl. With `iam` (the storage and log
    buckets the policies name) each workload's requests are checked against its IAM policy
    (local_cloud.aws.iam; the files in `policies`, aws/iam by default). Pods run as containers of the
    engine `pod_runtime` names, or as host processes (`process`); by default the emulator picks
    (local_cloud.kubernetes.containers.find_engine). With `stack` (its parameters), aws/template.yaml
    is deployed at start (local_cloud.aws.stack); without, only the EMR security configuration the
    template would create is."""
    ready = workdir / "endpoint"
    # An emulator of an earlier run that was killed before it could stop this one (by SIGKILL).
    try:
        for pid in reap(workdir / "emulator.pids"):
            print(f"stopped an emulator an earlier run left running (pid {pid})", file=sys.stderr, flush=True)
    except InUse as exc:
        raise StartupError(f"{exc}: wait for it to end, or stop it") from None
    # A file left by an earlier emulator would name a port nobody listens on any more.
    ready.unlink(missing_ok=True)
    (workdir / "requests.jsonl").unlink(missing_ok=True)
    (workdir / "kubernetes.jsonl").unlink(missing_ok=True)
    log = (workdir / "emulator.log").open("wb")
    command = [sys.executable, "-m", "local_cloud.server", "--port", "0", "--ready-file", str(ready)]
    # It stops, with everything it started, when this process dies, however.
    command += ["--parent-pid", str(os.getpid())]
    command += ["--journal", str(workdir / "requests.jsonl"), "--workdir", str(workdir / "lambda")]
    for bucket in buckets:
        command += ["--bucket", bucket]
    for role in roles:
        command += ["--role", role]
    if stack is None:
        command += ["--security-configuration", f"{SECURITY_CONFIGURATION}={SECURITY_CONFIGURATION_FILE}"]
    else:
        command += [f"--stack-parameter={name}={value}" for name, value in stack.items()]
    for manifest in MANIFESTS:
        command += ["--manifest", str(manifest)]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]
    if iam is not None:
        command += ["--iam", *iam] + (["--iam-policies", str(policies)] if policies else [])
    command += ["--pods-dir", str(workdir / "pods"), "--kube-journal", str(workdir / "kubernetes.jsonl")]
    if pod_runtime is not None:
        command += ["--pod-runtime", pod_runtime]
    for name, dockerfile in (DEFAULT_IMAGES if images is None else images).items():
        command += ["--image", f"{name}={dockerfile}"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    record(workdir / "emulator.pids", [proc.pid])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StartupError(
                    f"emulator did not start: {(workdir / 'emulator.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield ready.read_text()
    finally:
        # Its process group: the server and any step (spark-submit and its JVM) still running.
        terminate(proc, grace=20)
        (workdir / "emulator.pids").unlink(missing_ok=True)
        log.close()
