"""A real trained champion, trained once per test session and copied by the DAG tests that serve it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import BANK, ROOT, train_args

TRAINED_VERSION = "e2e-trained-1"


@pytest.fixture(scope="session")
def trained_storage(tmp_path_factory):
    """A storage root whose champion is TRAINED_VERSION, trained by the job on bank.csv."""
    root = tmp_path_factory.mktemp("trained") / "storage"
    args = train_args(BANK, root, "--version", TRAINED_VERSION, "--promote", "--min-metric", "roc_auc=0.8")
    proc = subprocess.run(
        [sys.executable, "-m", "spark_jobs.train", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"SPARK_LOCAL_MASTER": "local[2]"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def copy_of(trained_storage, work):
    """The trained storage root copied into a test's own folder (tests change their registry)."""
    root = work / "storage"
    shutil.copytree(trained_storage, root)
    return root
