"""Shared fixtures: one SparkSession for the whole run, paths to the bundled data and spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "data" / "bank" / "bank.csv"
BANK_FULL = ROOT / "data" / "bank" / "bank-full.csv"
SPEC = ROOT / "specs" / "bank_marketing.yaml"


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_MASTER", "local[2]")
    session = (
        SparkSession.builder.master("local[2]")
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


@pytest.fixture(scope="session")
def bank_spec():
    from spark_jobs.spec import load_spec

    return load_spec(str(SPEC))


def train_args(input_path: object, root: object, *extra: str, spec: object = SPEC) -> list[str]:
    """Arguments of `python -m spark_jobs.train` for an input, a storage root and extra options."""
    return ["--input", str(input_path), "--spec", str(spec), "--storage-root", str(root), *extra]
