"""Airflow offline: its own AIRFLOW_HOME and metadata database, its AWS connection on the emulator.

Used by `make run` (through local_cloud.run, SQLite, `airflow dags test`), by `make airflow`
(local_cloud.airflow.standalone, PostgreSQL) and by the end-to-end tests, so all run a DAG the same way.
Connections and Variables are environment variables here (`make airflow` moves them into its
database): no DAG code changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from local_cloud.aws.emr import network as emr_network
from local_cloud.aws.iam import WORKER_KEY, credentials
from local_cloud.kubernetes.api import kubeconfig
from local_cloud.lifetime import die_with_parent, terminate
from local_cloud.process import ROOT, SECURITY_CONFIGURATION, StartupError, running_emulator
from local_cloud.server import CREDENTIALS, REGION, client, role_arn

AIRFLOW = str(Path(sys.executable).parent / "airflow")
# The execution role of the spot-predictions function, which aws/template.yaml creates (test
# emulators without the stack are started with it: running_emulator(..., roles=[LAMBDA_ROLE])).
LAMBDA_ROLE = "ml-scaling-spot-predictions"
LOG_BUCKET = "ml-scaling-logs"
# What aws/template.yaml's ScoringPodRole trusts offline: an EKS cluster's OIDC provider by its form.
LOCAL_OIDC_PROVIDER = "oidc.eks.us-east-1.amazonaws.com/id/LOCALCLOUD"
# The Airflow worker's own credentials: the emulator holds them to the worker's IAM policy.
WORKER = credentials(WORKER_KEY)
DEFAULT_SPEC = ROOT / "specs" / "bank_marketing.yaml"
# Offline, as on AWS, runs read and write the emulator's S3 (kept between runs; see local_cloud.aws.s3).
DEFAULT_STORAGE_ROOT = "s3://ml-scaling-storage/ml-scaling"
POLL_SECONDS = "2"


def airflow_env(
    home: Path,
    endpoint: str,
    storage_root: str | Path,
    input_uri: str | Path,
    log_bucket: str,
    database_url: str | None = None,
    spec: str | Path = DEFAULT_SPEC,
) -> dict[str, str]:
    """What the Makefile exports: the same variables, pointed at temporary places. Without a
    `database_url`, Airflow's default SQLite database in `home`. The dataset is `input_uri`, read
    as `spec` says; locations are local paths or `s3://` URIs in the emulator."""
    connection = {
        "conn_type": "aws",
        "login": WORKER["AWS_ACCESS_KEY_ID"],
        "password": WORKER["AWS_SECRET_ACCESS_KEY"],
        "extra": {"endpoint_url": endpoint, "region_name": REGION},
    }
    return {
        **os.environ,
        **CREDENTIALS,
        **WORKER,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
        # The emulator's pod API, as a cluster's kubeconfig in the connection (no file to manage).
        "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config": json.dumps(kubeconfig(endpoint))}}
        ),
        "AIRFLOW_VAR_ML_STORAGE_ROOT": str(storage_root),
        "AIRFLOW_VAR_ML_INPUT_URI": str(input_uri),
        "AIRFLOW_VAR_ML_SPEC_URI": str(spec),
        "AIRFLOW_VAR_EMR_LOG_URI": f"s3://{log_bucket}/emr/",
        "AIRFLOW_VAR_ML_EMR_SECURITY_CONFIGURATION": SECURITY_CONFIGURATION,
        # The subnet and security groups every emulator creates, tagged for EMR's managed role.
        **emr_network.variables(),
        "AIRFLOW_VAR_ML_LAMBDA_ROLE_ARN": role_arn(LAMBDA_ROLE),
        # The emulator answers at once: poll it every few seconds, not as a real cluster.
        "AIRFLOW_VAR_ML_EMR_POLL_SECONDS": POLL_SECONDS,
        # Where runs may read and write: the storage root, the input's folder, the bundled data and
        # specs (spark_jobs.locations); anything else a Param names is refused before any work.
        "AIRFLOW_VAR_ML_ALLOWED_PREFIXES": ",".join(
            map(str, [storage_root, _parent(input_uri), _parent(spec), ROOT / "data", ROOT / "specs"])
        ),
        # The job CLIs that run on the worker reach S3 with the SDK's settings, as on AWS.
        "AWS_ENDPOINT_URL": endpoint,
        "SPARK_LOCAL_MASTER": "local[2]",
    } | ({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url} if database_url else {})


def _parent(uri: str | Path) -> str:
    return str(uri).rstrip("/").rsplit("/", 1)[0] if "://" in str(uri) else str(Path(uri).parent)


@contextlib.contextmanager
def offline_airflow(
    home: Path,
    storage_root: str | Path,
    input_uri: str | Path,
    database_url: str | None = None,
    spec: str | Path = DEFAULT_SPEC,
    policies: Path | None = None,
) -> Iterator[tuple[dict[str, str], str]]:
    """The emulator for `make run` and `make airflow`, and a migrated Airflow environment on it;
    yields the environment and the emulator's endpoint.

    With an `s3://` storage root (the default offline, as on AWS) its bucket is the emulator's, and
    a local input and spec are put in that bucket first (under data/ and specs/), so every task,
    step, pod and function reads them from S3. The emulator keeps S3 and the Lambda functions in
    home/cloud-state: what one run wrote or released, the next run (in the next emulator) finds.
    """
    root = str(storage_root)
    buckets = [LOG_BUCKET, *([root.removeprefix("s3://").split("/")[0]] if root.startswith("s3://") else [])]
    pod_runtime = None
    if not root.startswith("s3://"):
        # A container, like a pod on a cluster, cannot see this machine's folders.
        print(f"storage root {root} is a local folder: pods run as host processes", flush=True)
        pod_runtime = "process"
    with offline_emulator(home, buckets, policies, pod_runtime) as endpoint:
        print(f"local cloud emulator on {endpoint}", flush=True)
        if root.startswith("s3://"):
            s3 = client(endpoint, "s3")
            if "://" not in str(input_uri):
                input_uri = stage(s3, Path(input_uri), buckets[1], "data")
            if "://" not in str(spec):
                spec = stage(s3, Path(spec), buckets[1], "specs")
        ship_lambda(root, endpoint)
        env = airflow_env(home, endpoint, root, input_uri, LOG_BUCKET, database_url, spec)
        migrate(env)
        yield env, endpoint


def offline_emulator(
    home: Path, buckets: list[str], policies: Path | None = None, pod_runtime: str | None = None
) -> contextlib.AbstractContextManager[str]:
    """The emulator every offline command starts, with the state earlier ones kept in
    home/cloud-state (S3 objects, Lambda functions), the project's template deployed as on AWS
    (its buckets, roles, instance profile and EMR security configuration; the function is the
    releases'), `buckets` beyond the template's, and each workload held to its IAM policy
    (aws/iam, or `policies`) with the storage bucket for BUCKET."""
    storage = next((b for b in buckets if b != LOG_BUCKET), DEFAULT_STORAGE_ROOT.split("/")[2])
    return running_emulator(
        home,
        sorted(set(buckets) - {storage, LOG_BUCKET}),
        state_dir=home / "cloud-state",
        iam=(storage, LOG_BUCKET),
        policies=policies,
        pod_runtime=pod_runtime,
        stack=stack_parameters(storage),
    )


def stack_parameters(storage_bucket: str) -> dict[str, str]:
    """aws/template.yaml's parameters offline (no CodeKey: the function is the releases')."""
    return {
        "StorageBucketName": storage_bucket,
        "LogBucketName": LOG_BUCKET,
        "EksOidcProvider": LOCAL_OIDC_PROVIDER,
    }


def ship_lambda(storage_root: str | Path, endpoint: str) -> None:
    """What `make ship` does from CI before a deployment's first night: upload the Lambda package
    for this code (once per digest), so a release finds it and never builds on the worker. With
    the emulator's own credentials, as CI's deploy role has its own."""
    env = os.environ | CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint}
    command = [sys.executable, "-m", "spark_jobs", "lambda_package", "--storage-root", str(storage_root)]
    try:
        proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise StartupError("shipping the Lambda package took over 300 s (uv, PyPI?)") from None
    if proc.returncode != 0:
        raise StartupError(f"shipping the Lambda package failed: {proc.stderr.strip()[-2000:]}")


def stage(s3: Any, local: Path, bucket: str, prefix: str) -> str:
    """Put a local file (or a folder's files) in the emulator's S3 under `prefix`, named as under
    the repository's data/ or specs/ (else by its own name); return its s3:// URI."""
    base = ROOT / prefix
    name = local.relative_to(base) if local.is_relative_to(base) else Path(local.name)
    files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
    if not files:
        raise StartupError(f"{local}: no such file, or an empty folder")
    for path in files:
        key = f"{prefix}/{name}" + (f"/{path.relative_to(local)}" if local.is_dir() else "")
        s3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{prefix}/{name}"


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300
    )


def dags_test(
    env: dict[str, str],
    dag_id: str,
    conf: dict[str, Any],
    logical_date: str,
    on_line: Callable[[str], None] | None = None,
) -> tuple[int, str, dict[str, str]]:
    """Run `airflow dags test` (through local_cloud.airflow.dags_test, which then reads the run's
    task states in the same interpreter); return its exit code, its output (stdout and stderr as
    they came), and each task's final state (a mapped task's instances as `task_id[i]`). `on_line`
    sees each line of output as it is written, while the run goes on.

    The exit code alone is not enough: a test must see which task failed and that the teardown ran.
    """
    # Its own process group, so a run that outlasts 15 minutes goes with everything it started
    # (a child left holding the output would keep this reading).
    with tempfile.TemporaryDirectory(prefix="dags-test-") as scratch:
        states_file = Path(scratch) / "states.json"
        command = [sys.executable, "-m", "local_cloud.airflow.dags_test", str(states_file)]
        proc = subprocess.Popen(
            [*command, dag_id, logical_date, "-c", json.dumps(conf)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL),  # a killed `make run` leaves no run going
        )
        timer = threading.Timer(900, terminate, args=(proc, 5.0))
        timer.daemon = True
        timer.start()
        lines = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line)
            code = proc.wait()
        finally:
            timer.cancel()
            terminate(proc, grace=5.0)  # at once if it has ended; what it left in its group goes too
            if proc.stdout is not None:
                proc.stdout.close()
        # None written (a run killed at 15 minutes, an unreadable database): no states to show.
        final: dict[str, str] = json.loads(states_file.read_text()) if states_file.exists() else {}
    return code, "".join(lines), final
