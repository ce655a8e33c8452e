"""The class archive of local Spark JVMs: named by what it was made with, and really mapped."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spark_jobs import class_archive
from spark_jobs.session import local_jvm_options
from tests.conftest import ROOT


def test_another_java_or_jar_on_the_classpath_names_another_archive(tmp_path):
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_bytes(b"a JVM")
    jars = tmp_path / "s3a"
    jars.mkdir()
    (jars / "hadoop-aws.jar").write_bytes(b"one")
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "jdk"), "SPARK_S3A_JARS": str(jars)}
    names = [class_archive.path(env, tmp_path)]
    assert names[0] is not None and names[0].parent == tmp_path
    assert class_archive.path(env, tmp_path) == names[0]  # the same files, the same name
    (jars / "hadoop-aws.jar").write_bytes(b"two, longer")  # the same name, another jar
    names.append(class_archive.path(env, tmp_path))
    (jars / "aws-sdk.jar").write_bytes(b"three")  # one more
    names.append(class_archive.path(env, tmp_path))
    java.write_bytes(b"another JVM")  # the JVM spark-class starts: JAVA_HOME's
    names.append(class_archive.path(env, tmp_path))
    assert len(set(names)) == 4
    # Without a JVM there is nothing to make an archive for.
    assert class_archive.path(env | {"JAVA_HOME": str(tmp_path / "none")}, tmp_path) is None


@pytest.mark.spark
def test_a_local_driver_maps_sparks_classes_from_the_archive_make_setup_made(tmp_path):
    left = class_archive.CACHE / "jvm-classes-killed"  # what a killed builder leaves
    left.mkdir(parents=True, exist_ok=True)
    made = class_archive.build()  # what `make setup` runs: kept, or made on a machine without it
    assert made == class_archive.path() and made.stat().st_size > 0 and not left.exists()
    assert class_archive.build() == made
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

    # A child that inherits the options on another classpath (no S3A jars) runs without it, and
    # says so on stderr: its stdout is the job's answer.
    env = os.environ | {"SPARK_SUBMIT_OPTS": local_jvm_options(), "SPARK_S3A_JARS": str(tmp_path)}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Unable to use shared archive" in proc.stderr and "shared archive" not in proc.stdout
