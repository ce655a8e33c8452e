"""A class-data archive (the JVM's AppCDS) of what a local Spark job loads, made once per checkout.

A local Spark JVM spends seconds of CPU at each start loading and verifying thousands of classes
from Spark's jars; mapped from an archive they cost little. Measured on two cores: a training on
bank.csv in 21 CPU-s instead of 25 (17 s instead of 21), a short job in 5.5 instead of 8.3.
`make setup` makes it (about 25 s, once per checkout, in build/jvm-classes); local JVMs use it
when it exists (session.local_jvm_options). EMR's JVMs never do.

The JVM uses an archive only on the classpath and the JVM it was made with, and says so in a
warning on every start otherwise; its name is therefore a digest of the Java binary and of every
jar on a local driver's classpath (Spark's, then the S3A connector's), so a change in any of them
names another archive, which does not exist until `make setup` makes it (and removes the old).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spark_jobs.errors import JobError, run_cli
from spark_jobs.session import LOCAL_JVM_OPTIONS, s3a_jars, s3a_settings

PROJECT = Path(__file__).resolve().parents[1]
CACHE = PROJECT / "build" / "jvm-classes"


def path(environ: Mapping[str, str] = os.environ, cache: Path = CACHE) -> Path | None:
    """Where the archive for a local driver started with `environ` is (or would be); None without
    a Java or a Spark to make one for."""
    home = environ.get("JAVA_HOME")  # as spark-class finds the JVM
    java = str(Path(home, "bin", "java")) if home else shutil.which("java", path=environ.get("PATH"))
    pyspark = importlib.util.find_spec("pyspark")  # not imported: the emulator asks too
    if java is None or not Path(java).exists() or pyspark is None or pyspark.origin is None:
        return None
    spark_jars = sorted(str(jar) for jar in (Path(pyspark.origin).parent / "jars").glob("*.jar"))
    files = [os.path.realpath(java), *spark_jars, *s3a_jars(environ)]
    identity = [(file, os.stat(file).st_size, os.stat(file).st_mtime_ns) for file in files]
    return cache / f"{hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]}.jsa"


def build(environ: Mapping[str, str] = os.environ, cache: Path = CACHE) -> Path:
    """The archive for `environ`, made once: a short local job (a DataFrame read and written, a
    model pipeline fitted and saved) runs under spark-submit with the S3A connector on the
    classpath, as a local step or get_spark runs, and its JVM writes what it loaded as it exits.
    One builder at a time; written whole, then renamed; the archives of an earlier Java or earlier
    jars, and what a killed builder left, are removed."""
    target = path(environ, cache)
    if target is None:
        raise JobError("no Java or no pyspark here: `make setup` installs pyspark and checks Java 17")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for left in cache.glob("jvm-classes-*"):  # a killed builder's: none runs but this one
            shutil.rmtree(left, ignore_errors=True)
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(prefix="jvm-classes-", dir=cache) as tmp:
            written = Path(tmp) / target.name
            command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]"]
            for key, value in {**s3a_settings(environ), "spark.ui.enabled": "false"}.items():
                command += ["--conf", f"{key}={value}"]
            env = {**environ, "PYSPARK_PYTHON": sys.executable}
            env["SPARK_SUBMIT_OPTS"] = f'{LOCAL_JVM_OPTIONS} -XX:ArchiveClassesAtExit="{written}"'
            # spark-submit execs the JVM: when this returns, the JVM has written the archive.
            proc = subprocess.run(
                [*command, __file__, "--workload", tmp], env=env, capture_output=True, text=True, timeout=600
            )
            if proc.returncode != 0 or not written.exists():
                failed = f"the class archive's job failed (exit {proc.returncode})"
                raise JobError(f"{failed}: {proc.stderr[-2000:]}")
            written.replace(target)
        for old in set(cache.glob("*.jsa")) - {target}:  # a JVM that maps one keeps its copy
            old.unlink()
    return target


def workload(scratch: Path) -> None:
    """What a local job loads, in little: CSV in, a feature and model pipeline fitted, evaluated
    and saved, Parquet out."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler
    from pyspark.sql import functions as F

    from spark_jobs.session import get_spark

    spark = get_spark("class-archive")
    rows = [(float(i), "ab"[i % 2], i % 3 == 0) for i in range(40)]
    spark.createDataFrame(rows, ["x", "c", "y"]).write.csv(str(scratch / "csv"), header=True)
    frame = spark.read.csv(str(scratch / "csv"), header=True, inferSchema=True)
    frame = frame.withColumn("label", F.col("y").cast("double"))
    stages: list[Any] = [
        StringIndexer(inputCol="c", outputCol="ci"),
        OneHotEncoder(inputCols=["ci"], outputCols=["co"]),
        VectorAssembler(inputCols=["x", "co"], outputCol="features"),
        LogisticRegression(maxIter=5),
    ]
    model = Pipeline(stages=stages).fit(frame)
    scored = model.transform(frame)
    BinaryClassificationEvaluator().evaluate(scored)
    model.write().save(str(scratch / "model"))
    scored.select("x", "prediction").write.parquet(str(scratch / "scores"))
    spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    prog = "python -m spark_jobs class_archive"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--workload", type=Path, help=argparse.SUPPRESS)  # the JVM's job, under spark-submit
    args = parser.parse_args(argv)
    if args.workload:
        workload(args.workload)
        return 0

    def command() -> None:
        start = time.monotonic()
        existed = (where := path()) is not None and where.exists()
        made = build()
        print(f"class archive: {made} ({'kept' if existed else f'made in {time.monotonic() - start:.0f} s'})")

    return run_cli(command, also=(OSError, subprocess.TimeoutExpired))


if __name__ == "__main__":  # under spark-submit, with --workload
    sys.exit(main())
