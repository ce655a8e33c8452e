"""The one place a SparkSession is made, so local runs, spark-submit and tests agree."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spark_jobs.errors import JobError

# Where `make setup` puts the S3A connector's jars (Makefile: S3A_JARS); SPARK_S3A_JARS names
# another folder.
DEFAULT_S3A_JARS = Path(__file__).resolve().parents[1] / ".tools" / "s3a"
# Local JVMs run one job on a laptop's or CI's few cores, where the parallel collector's threads
# cost more than they save (1M rows: 91 CPU-s instead of 100). The caller's SPARK_SUBMIT_OPTS
# wins; EMR's JVMs are never touched.
LOCAL_JVM_OPTIONS = "-XX:+UseSerialGC"
# SPARK_LOCAL_JIT=quick: the JIT's first tier only, for jobs of seconds on samples, where the C2
# compiler's work never pays back: training on bank.csv takes 25 CPU-s instead of 42 (21 s instead
# of 24), on bank-full 31 instead of 56. A long job is slower for it (bank-full x23, 1M rows: 83 s
# instead of 46), so `full` is the default; the emulator's steps and the tests, which run samples,
# default to `quick`.
QUICK_JIT_OPTIONS = "-XX:TieredStopAtLevel=1"
# S3A's own providers, then the SDK's: the environment (offline, CI), a pod's service-account role
# (IRSA's web identity token), the instance profile.
_CREDENTIAL_PROVIDERS = (
    "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
    "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    "com.amazonaws.auth.WebIdentityTokenCredentialsProvider",
    "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
)


def s3a_jars(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The S3A connector's jars to add to Spark's classpath (none: it must be there already)."""
    folder = Path(environ.get("SPARK_S3A_JARS") or DEFAULT_S3A_JARS)
    return sorted(str(jar) for jar in folder.glob("*.jar"))


def s3a_settings(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Spark settings that serve `s3://` and `s3a://` with the S3A connector, as everywhere but
    EMR (where EMRFS serves `s3://`). The endpoint, when the environment names one (the emulator's:
    AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL), is reached path-style; credentials come from the
    provider chain, never from these settings."""
    settings = {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        "spark.hadoop.fs.s3a.aws.credentials.provider": ",".join(_CREDENTIAL_PROVIDERS),
        # Leave parent "directory" markers alone: deleting them after each write asks for
        # s3:DeleteObject on every parent prefix, which a prefix-scoped policy rightly refuses.
        "spark.hadoop.fs.s3a.directory.marker.retention": "keep",
    }
    # Before Spark starts, so the driver's JVM (the executors', in local mode) loads the connector.
    if jars := s3a_jars(environ):
        settings["spark.driver.extraClassPath"] = os.pathsep.join(jars)
    if region := environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"):
        settings["spark.hadoop.fs.s3a.endpoint.region"] = region
    if endpoint := environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL"):
        settings |= {
            "spark.hadoop.fs.s3a.endpoint": endpoint,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https:")).lower(),
        }
    return settings


def local_jvm_options(environ: Mapping[str, str] = os.environ) -> str:
    """LOCAL_JVM_OPTIONS, the first JIT tier only if SPARK_LOCAL_JIT is `quick`, and the class
    archive `make setup` made for a driver started with `environ` (spark_jobs.class_archive)."""
    from spark_jobs import class_archive

    jit = environ.get("SPARK_LOCAL_JIT", "full")
    if jit not in ("quick", "full"):
        raise JobError("SPARK_LOCAL_JIT must be quick (jobs of seconds) or full (the default)")
    options = LOCAL_JVM_OPTIONS + (f" {QUICK_JIT_OPTIONS}" if jit == "quick" else "")
    archive = class_archive.path(environ)
    if archive is None or not archive.exists():
        return options
    # A JVM that cannot use it (a child that inherited these options, on another classpath) says
    # so on stderr: on stdout, the JVM's default, it would precede a job's answer.
    return f'{options} -XX:SharedArchiveFile="{archive}" -Xlog:cds*=off -Xlog:cds*=warning:stderr'


def local_driver_defaults() -> None:
    """What a local Spark driver started from this process needs in its environment, unless the
    caller set it: Python workers (UDFs) run this interpreter, with its packages, not whatever
    `python3` is on PATH; the driver's JVM (read as it starts) has local_jvm_options()."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if "SPARK_SUBMIT_OPTS" not in os.environ:
        os.environ["SPARK_SUBMIT_OPTS"] = local_jvm_options()


def get_spark(app_name: str) -> Any:
    """Return the running session or start one.

    Under spark-submit (EMR, or the local emulator) the master, resources and filesystems come
    from the submit command and are left alone. Run as plain `python -m` (a pod, `make train`),
    Spark starts locally on all cores with settings that suit a laptop, and reads and writes
    `s3://` through S3A.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise JobError(
            f"{app_name} needs Spark, which this Python does not have: the scoring pods' image "
            "carries the Arrow engine only (score --engine arrow); Spark jobs run on EMR or where "
            "`make setup` installed the project"
        ) from None

    builder = SparkSession.builder.appName(app_name).config("spark.ui.showConsoleProgress", "false")
    launched_by_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if not launched_by_submit:
        local_driver_defaults()
        builder = (
            builder.master(os.environ.get("SPARK_LOCAL_MASTER", "local[*]"))
            .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "4g"))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
        )
        for key, value in s3a_settings().items():
            builder = builder.config(key, value)
        if tmpdir := os.environ.get("TMPDIR"):
            # The JVM ignores TMPDIR: under a read-only root with a writable scratch volume Spark
            # fails at start ("Failed to create a temp directory (under /tmp)"),
            # and S3A cannot buffer an upload ("Could not find any valid local directory for
            # s3ablock"; its buffer is under hadoop.tmp.dir, /tmp/hadoop-<user> by default).
            builder = builder.config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={tmpdir}")
            builder = builder.config("spark.hadoop.hadoop.tmp.dir", os.path.join(tmpdir, "hadoop"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    return spark
