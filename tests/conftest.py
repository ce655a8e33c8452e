"""Shared fixtures: one SparkSession for the whole run, paths to the bundled data and spec."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "data" / "bank" / "bank.csv"
BANK_FULL = ROOT / "data" / "bank" / "bank-full.csv"
SPEC = ROOT / "specs" / "bank_marketing.yaml"
PENGUINS = ROOT / "data" / "penguins" / "penguins.csv"
PENGUINS_SPEC = ROOT / "specs" / "penguins.yaml"
# The bank model's spot-predictions function (lambda_release.function_name, default prefix).
BANK_FUNCTION = "ml-scaling-spot-predictions-bank-marketing"
# Every Spark job the tests start, here or in a process they start, is one of seconds on a sample
# (spark_jobs.session.QUICK_JIT_OPTIONS).
os.environ.setdefault("SPARK_LOCAL_JIT", "quick")


# What a fixture starts, so a test that uses it carries the marker without saying so itself.
STARTED_BY_FIXTURE = {
    "spark": "spark",
    "trained_storage": "spark",
    "s3_endpoint": "emulator",
    "emulator": "emulator",
}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture in set(item.fixturenames) & set(STARTED_BY_FIXTURE):
            item.add_marker(STARTED_BY_FIXTURE[fixture])


@pytest.fixture(autouse=True)
def _restore_root_logging():
    """Job CLIs called in-process set up logging to stderr, which in a test is pytest's capture:
    undo it, or a later log call (py4j's at exit) writes to a closed stream."""
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    from spark_jobs.session import local_driver_defaults, s3a_settings

    os.environ.setdefault("SPARK_LOCAL_MASTER", "local[2]")
    local_driver_defaults()  # as get_spark starts local Spark
    builder = SparkSession.builder
    for key, value in s3a_settings().items():  # get_spark's classpath, which the class archive's is
        builder = builder.config(key, value)
    session = (
        builder.master("local[2]")
        .appName("tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    # py4j says goodbye at interpreter exit, after pytest has closed the streams the logging
    # handlers Airflow set up at import write to; its goodbye is not worth a traceback.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture
def webhook():
    """A local HTTP endpoint that records what is POSTed to it: (its URL, [(path, JSON body)])."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


@pytest.fixture(scope="session")
def bank_spec():
    from spark_jobs.spec import load_spec

    return load_spec(str(SPEC))


@pytest.fixture(scope="session")
def s3_endpoint():
    """The emulator's S3 on a thread, with a bucket `registry`."""
    from local_cloud.server import client, serve

    emulator = serve(0, None)
    client(emulator.endpoint, "s3").create_bucket(Bucket="registry")
    yield emulator.endpoint
    emulator.shutdown()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    """SDK settings (boto3 and s3fs alike) that reach the emulator's S3, with its bucket
    `registry`: made again if a test's `mock_aws` (moto's state is the process's) reset it."""
    from local_cloud.server import CREDENTIALS, client

    s3 = client(s3_endpoint, "s3")
    if "registry" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="registry")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return s3_endpoint


@pytest.fixture(scope="session")
def spot_zip():
    """The real spot-predictions Lambda package, built as a release builds it."""
    from spark_jobs.shipping import lambda_package

    return lambda_package.build()


def train_args(input_path: object, root: object, *extra: str, spec: object = SPEC) -> list[str]:
    """Arguments of `python -m spark_jobs train` for an input, a storage root and extra options."""
    return ["--input", str(input_path), "--spec", str(spec), "--storage-root", str(root), *extra]


def function_request(code: bytes, env: dict | None = None, **settings) -> dict:
    """CreateFunction parameters for a zip, shaped as a release shapes them (unique name by
    default); `settings` override FunctionSettings (timeout, memory_size), the handler or runtime."""
    import uuid

    from scaling_platform.lambda_release import FunctionSettings, function_config

    from local_cloud.airflow.offline import LAMBDA_ROLE
    from local_cloud.server import role_arn
    from spark_jobs.shipping.lambda_package import HANDLER, RUNTIME

    handler = settings.pop("handler", HANDLER)
    runtime = settings.pop("runtime", RUNTIME)
    name = settings.pop("name", f"fn-{uuid.uuid4().hex[:8]}")
    fn = FunctionSettings(name=name, role_arn=role_arn(LAMBDA_ROLE), **settings)
    return function_config(fn, {"runtime": runtime, "handler": handler}, env or {}) | {
        "Code": {"ZipFile": code}
    }


def bank_records(n: int, start: int = 0) -> list[dict]:
    """Rows of bank.csv as the JSON records a caller sends: numbers as numbers, no target."""
    import csv

    from spark_jobs.spec import load_spec

    spec = load_spec(str(SPEC))
    with BANK.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))[start : start + n]
    return [
        {
            k: (int(v) if spec.columns[k].type == "integer" else v)
            for k, v in row.items()
            if k in spec.features
        }
        for row in rows
    ]


def handmade_version(root: object, version: str = "v1", promote: bool = True):
    """A registry version of the bank model without Spark: every feature weighted by hand, the
    categories those of bank.csv. Enough for serving tests; Spark equality is tested apart."""
    import csv

    from spark_jobs import storage
    from spark_jobs.registry.portable import FORMAT, FORMAT_VERSION
    from spark_jobs.registry.store import METRICS, PORTABLE, Gate, Registry
    from spark_jobs.registry.store import SPEC as SPEC_FILE
    from spark_jobs.spec import load_spec

    spec = load_spec(str(SPEC))
    with BANK.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": spec.name,
        "target": spec.target.model_dump(),
        "numeric": [
            {
                "name": n,
                "impute": 10.0 + i,
                "mean": 10.0 + i,
                "std": 5.0 + i,
                "weight": 0.1 * (i - 3),
                "observed": [min(values := [float(r[n]) for r in rows]), max(values)],
            }
            for i, n in enumerate(spec.numeric)
        ],
        "categorical": [
            {
                "name": n,
                "categories": (cats := sorted({r[n] for r in rows})),
                "weights": [0.05 * (j - len(cats) / 2) for j in range(len(cats))],
            }
            for n in spec.categorical
        ],
        "intercept": -1.5,
    }
    registry = Registry(str(root), spec.name)
    with registry.staged(version) as staging:
        storage.write_bytes(storage.join(staging, SPEC_FILE), storage.dump_json(spec.model_dump()))
        storage.write_bytes(storage.join(staging, PORTABLE), storage.dump_json(doc))
        metrics = {"roc_auc": 0.9, "pr_auc": 0.5, "f1": 0.4, "rows": {"test": 10}}
        storage.write_bytes(storage.join(staging, METRICS), storage.dump_json(metrics))
        registry.commit(version, {"created_at": "2026-11-24T00:00:00Z"})
    if promote:
        registry.promote(version, Gate())
    return registry


def free_port() -> int:
    """A port nothing listens on right now, on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Where a test's clusters start: the tagged network every emulator creates (local_cloud.aws.emr.network).
def in_network() -> dict:
    from local_cloud.aws.emr import network as emr_network

    return {"subnet_id": emr_network.SUBNET, "security_groups": emr_network.SECURITY_GROUPS}


# A real trained champion, trained once per test session and copied by the tests that serve it.
TRAINED_VERSION = "e2e-trained-1"


@pytest.fixture(scope="session")
def trained_storage(tmp_path_factory):
    """A storage root whose champion is TRAINED_VERSION, trained by the job on bank.csv, with the
    Lambda package shipped."""
    import fcntl
    import subprocess

    # One for the whole run: under pytest-xdist the workers share the run's base folder, and the
    # first to take the lock trains while the others wait for it.
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
    root, done = shared / "trained" / "storage", shared / "trained" / "done"
    root.parent.mkdir(exist_ok=True)
    with (shared / "trained.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return root
        args = train_args(
            BANK, root, "--version", TRAINED_VERSION, "--promote", "--min-metric", "roc_auc=0.8"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "spark_jobs", "train", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env=os.environ | {"SPARK_LOCAL_MASTER": "local[2]"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        from spark_jobs.shipping import lambda_package

        lambda_package.ship(str(root))  # as `make ship` does before a deployment's first night
        done.touch()
    return root


def copy_of(trained_storage, work):
    """The trained storage root copied into a test's own folder (tests change their registry)."""
    import shutil

    root = work / "storage"
    shutil.copytree(trained_storage, root)
    return root
