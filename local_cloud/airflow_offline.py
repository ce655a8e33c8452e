"""Airflow offline: its own AIRFLOW_HOME and metadata database, its AWS connection on the emulator.

Used by `make run` (through local_cloud.run, SQLite, `airflow dags test`), by `make airflow`
(local_cloud.standalone, PostgreSQL) and by the end-to-end tests, so all run a DAG the same way.
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
from collections.abc import Iterator
from pathlib import Path

from local_cloud.kubernetes_service import kubeconfig
from local_cloud.lifetime import die_with_parent
from local_cloud.process import ROOT, SECURITY_CONFIGURATION, running_emulator
from local_cloud.server import CREDENTIALS, REGION, role_arn

AIRFLOW = str(Path(sys.executable).parent / "airflow")
# The execution role of the spot-predictions function: on AWS the platform team provisions it
# (docs/aws.md); the emulator is started with it (running_emulator(..., roles=[LAMBDA_ROLE])).
LAMBDA_ROLE = "ml-scaling-spot-predictions"
LOG_BUCKET = "ml-scaling-logs"
DEFAULT_SPEC = ROOT / "specs" / "bank_marketing.yaml"
POLL_SECONDS = "5"


def airflow_env(
    home: Path,
    endpoint: str,
    storage_root: Path,
    input_uri: Path,
    log_bucket: str,
    database_url: str | None = None,
    spec: Path = DEFAULT_SPEC,
) -> dict[str, str]:
    """What the Makefile exports: the same variables, pointed at temporary places. Without a
    `database_url`, Airflow's default SQLite database in `home`. The dataset is `input_uri`, read
    as `spec` says."""
    connection = {
        "conn_type": "aws",
        "login": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "password": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "extra": {"endpoint_url": endpoint, "region_name": REGION},
    }
    return {
        **os.environ,
        **CREDENTIALS,
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
        "AIRFLOW_VAR_ML_LAMBDA_ROLE_ARN": role_arn(LAMBDA_ROLE),
        # The emulator answers at once: poll it every few seconds, not as a real cluster.
        "AIRFLOW_VAR_ML_EMR_POLL_SECONDS": POLL_SECONDS,
        # Where runs may read and write: the storage root, the input's folder, the bundled data and
        # specs (spark_jobs.locations); anything else a Param names is refused before any work.
        "AIRFLOW_VAR_ML_ALLOWED_PREFIXES": ",".join(
            map(str, [storage_root, input_uri.parent, spec.parent, ROOT / "data", ROOT / "specs"])
        ),
        # Tasks import the job package's light modules (the image sets the same).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SPARK_LOCAL_MASTER": "local[2]",
    } | ({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url} if database_url else {})


@contextlib.contextmanager
def offline_airflow(
    home: Path,
    storage_root: Path,
    input_uri: Path,
    database_url: str | None = None,
    spec: Path = DEFAULT_SPEC,
) -> Iterator[tuple[dict[str, str], str]]:
    """The emulator for `make run` and `make airflow`, and a migrated Airflow environment on it;
    yields the environment and the emulator's endpoint.

    Lambda functions are kept in home/cloud-state: the function one run released is the one the
    next run (in the next emulator) invokes.
    """
    state = home / "cloud-state"
    with running_emulator(home, [LOG_BUCKET], [LAMBDA_ROLE], state_dir=state) as endpoint:
        print(f"local cloud emulator on {endpoint}", flush=True)
        env = airflow_env(home, endpoint, storage_root, input_uri, LOG_BUCKET, database_url, spec)
        migrate(env)
        yield env, endpoint


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300
    )


def dags_test(
    env: dict[str, str], dag_id: str, conf: dict, logical_date: str
) -> tuple[int, str, dict[str, str]]:
    """Run `airflow dags test`; return its exit code, its output, and each task's final state.

    The exit code alone is not enough: a test must see which task failed and that the teardown ran.
    """
    proc = subprocess.run(
        [AIRFLOW, "dags", "test", dag_id, logical_date, "-c", json.dumps(conf)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=die_with_parent(signal.SIGKILL),  # a killed `make run` leaves no run going
    )
    states = subprocess.run(
        [AIRFLOW, "tasks", "states-for-dag-run", dag_id, logical_date, "-o", "json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    final = {t["task_id"]: t["state"] for t in json.loads(states.stdout)} if states.returncode == 0 else {}
    return proc.returncode, proc.stdout + proc.stderr, final
