"""Local Spark where only the scratch folder is writable: the scoring pod's read-only root, with
TMPDIR on its scratch volume. Needs root and util-linux's unshare (CI runs as root)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spark_jobs.errors import JobError
from spark_jobs.session import LOCAL_JVM_OPTIONS, QUICK_JIT_OPTIONS, local_jvm_options
from tests.conftest import ROOT

JOB = """
from spark_jobs.session import get_spark
spark = get_spark("read-only-tmp")
print("tmpdir", spark._jvm.System.getProperty("java.io.tmpdir"))
print("jvm", list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()))
print("s3a buffer", spark.sparkContext._jsc.hadoopConfiguration().get("fs.s3a.buffer.dir"))
print("rows", spark.range(1000).selectExpr("id % 7 AS k").groupBy("k").count().count())
"""


def test_the_jit_is_cut_short_only_for_jobs_said_to_be_short_and_only_by_a_known_word():
    empty = {"PATH": ""}  # no Java: no class archive either
    assert local_jvm_options(empty) == LOCAL_JVM_OPTIONS  # a long job may follow: the full JIT
    assert (
        local_jvm_options(empty | {"SPARK_LOCAL_JIT": "quick"}) == f"{LOCAL_JVM_OPTIONS} {QUICK_JIT_OPTIONS}"
    )
    assert local_jvm_options(empty | {"SPARK_LOCAL_JIT": "full"}) == LOCAL_JVM_OPTIONS
    with pytest.raises(JobError, match="SPARK_LOCAL_JIT must be quick"):
        local_jvm_options(empty | {"SPARK_LOCAL_JIT": "fast"})


@pytest.mark.spark
def test_spark_starts_and_works_with_tmp_read_only_and_tmpdir_on_scratch(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # A private mount namespace: /tmp read-only, as under readOnlyRootFilesystem, and the scratch
    # folder bound back writable, as the pod's emptyDir.
    script = (
        "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && "
        f"mount --bind {scratch} {scratch} && mount -o remount,bind,rw {scratch} && "
        f"! touch /tmp/probe 2>/dev/null && touch {scratch}/probe && "
        f'exec {sys.executable} -c "$JOB"'
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "SPARK_SUBMIT_OPTS"}
        | {"JOB": JOB, "TMPDIR": str(scratch), "SPARK_LOCAL_MASTER": "local[1]", "HOME": str(scratch)}
        | {"SPARK_LOCAL_JIT": "quick"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"tmpdir {scratch}" in proc.stdout and "rows 7" in proc.stdout
    # A local driver's JVM with the options that suit one job on few cores, a short one here.
    options = f"{LOCAL_JVM_OPTIONS} {QUICK_JIT_OPTIONS}".split()
    assert all(f"'{option}'" in proc.stdout for option in options), proc.stdout
    # Where S3A buffers an upload before sending it (the scoring pod's writes to s3://).
    assert f"s3a buffer {scratch}/hadoop/s3a" in proc.stdout
