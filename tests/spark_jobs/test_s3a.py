"""Spark outside EMR reads and writes `s3://` through the S3A connector (Makefile: S3A_JARS), as
the pods, `make train` and the emulator's steps do; without it a job says Spark cannot reach the
input, not that the data breaks its contract (exit 3, which is not retried)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local_cloud.process import running_emulator
from local_cloud.server import CREDENTIALS, client
from tests.conftest import BANK, ROOT

pytestmark = [pytest.mark.spark, pytest.mark.emulator]

JOB = """
from spark_jobs.session import get_spark
spark = get_spark("s3a")
frame = spark.read.option("header", True).option("sep", ";").csv("s3://s3a-test/in/bank.csv")
frame.write.mode("overwrite").parquet("s3://s3a-test/out/ds=1")
print("rows", spark.read.parquet("s3://s3a-test/out").count())
"""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("emulator"), ["s3a-test"]) as endpoint:
        client(endpoint, "s3").upload_file(str(BANK), "s3a-test", "in/bank.csv")
        yield os.environ | CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint, "SPARK_LOCAL_MASTER": "local[1]"}


def test_local_spark_reads_and_writes_s3_through_s3a(emulator):
    proc = subprocess.run(
        [sys.executable, "-c", JOB], cwd=ROOT, env=emulator, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"rows {len(BANK.read_text().splitlines()) - 1}" in proc.stdout
    written = client(emulator["AWS_ENDPOINT_URL"], "s3").list_objects_v2(Bucket="s3a-test", Prefix="out/")
    assert any(o["Key"].endswith(".snappy.parquet") for o in written["Contents"])


def test_without_the_connector_a_job_says_spark_cannot_reach_the_input(emulator, tmp_path):
    command = [sys.executable, "-m", "spark_jobs", "train", "--input", "s3://s3a-test/in/bank.csv"]
    command += ["--spec", "specs/bank_marketing.yaml", "--storage-root", str(tmp_path / "storage")]
    env = emulator | {"SPARK_S3A_JARS": str(tmp_path)}  # a folder with no jars
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Spark cannot reach the input s3://s3a-test/in/bank.csv" in proc.stderr
    assert "S3AFileSystem not found" in proc.stderr
    assert "Traceback" not in proc.stderr
