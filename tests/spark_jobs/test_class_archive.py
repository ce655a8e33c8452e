"""The class archive of local Spark JVMs: named by what it was made with, and really mapped."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spark_jobs import class_archive
from tests.conftest import ROOT


def test_another_java_or_jar_on_the_classpath_names_another_archive(tmp_path):
    jars = tmp_path / "s3a"
    jars.mkdir()
    (jars / "hadoop-aws.jar").write_bytes(b"one")
    env = {**os.environ, "SPARK_S3A_JARS": str(jars)}
    first = class_archive.path(env, tmp_path)
    assert first is not None and first.parent == tmp_path and first == class_archive.path(env, tmp_path)
    (jars / "hadoop-aws.jar").write_bytes(b"two")  # the same name, another jar
    second = class_archive.path(env, tmp_path)
    (jars / "aws-sdk.jar").write_bytes(b"three")
    third = class_archive.path(env, tmp_path)
    assert len({first, second, third}) == 3
    # The JVM spark-class would start (JAVA_HOME's) counts too; without one there is no archive.
    assert class_archive.path(env | {"JAVA_HOME": str(tmp_path)}, tmp_path) is None


@pytest.mark.spark
def test_a_local_driver_maps_sparks_classes_from_the_archive_make_setup_made(tmp_path):
    made = class_archive.build()  # what `make setup` runs: kept, or made on a machine without it
    assert made == class_archive.path() and made.stat().st_size > 0
    assert class_archive.build() == made and not list(made.parent.glob("jvm-classes-*"))
    loaded = tmp_path / "classes.log"
    job = "from spark_jobs.session import get_spark; get_spark('cds').range(10).count()"
    env = {k: v for k, v in os.environ.items() if k != "SPARK_SUBMIT_OPTS"}
    # The JVM reads JAVA_TOOL_OPTIONS besides its options: here, where each class came from.
    env |= {"SPARK_LOCAL_MASTER": "local[1]", "JAVA_TOOL_OPTIONS": f"-Xlog:class+load=info:file={loaded}"}
    command = [sys.executable, "-c", job]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Unable to use shared archive" not in proc.stdout + proc.stderr
    log = loaded.read_text()
    assert "org.apache.spark.SparkContext source: shared objects file (top)" in log, log[-2000:]
