"""End to end: the training CLI as EMR and `make run` run it, into a temporary registry."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spark_jobs.registry.store import Registry
from tests.conftest import BANK, ROOT, train_args

pytestmark = pytest.mark.spark


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spark_jobs", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"SPARK_LOCAL_MASTER": "local[2]"},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("storage")
    proc = _cli(
        "train",
        *train_args(BANK, root, "--run-id", "e2e-run", "--promote", "--min-metric", "roc_auc=0.8"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    registry = Registry(str(root), "bank-marketing")
    (version,) = registry.versions()
    return registry, version, proc.stdout


def test_help_lists_the_options():
    train_help = _cli("train", "--help")
    assert train_help.returncode == 0
    for option in (
        "--input",
        "--spec",
        "--storage-root",
        "--version",
        "--run-id",
        "--seed",
        "--promote",
        "--min-metric",
        "--tolerance",
    ):
        assert option in train_help.stdout
    registry_help = _cli("registry", "--help")
    assert registry_help.returncode == 0
    assert "show" in registry_help.stdout and "promote" in registry_help.stdout


def test_every_artefact_is_there_and_matches_the_manifest(trained):
    registry, version, stdout = trained
    folder = Path(registry.version_uri(version))
    manifest = json.loads((folder / "manifest.json").read_text())
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest, rel
    assert manifest["run_id"] == "e2e-run"
    assert manifest["data"]["fingerprint"].startswith("sha256:")
    assert len(manifest["code_version"]["source_sha256"]) == 64
    assert manifest["spark_version"].startswith("3.5.")
    assert any(rel.startswith("spark_model/stages/") for rel in on_disk)
    for png in ("roc.png", "confusion.png", "weights.png"):
        assert (folder / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{png}"' in (folder / "report" / "index.html").read_text()
    assert str(folder) in stdout and "report" in stdout


def test_metrics_are_complete_and_plausible(trained):
    registry, version, _ = trained
    m = registry.metrics(version)
    assert 0.8 < m["roc_auc"] <= 1.0 and 0.0 < m["pr_auc"] <= 1.0
    cm = m["confusion_matrix"]
    assert sum(cm.values()) == m["rows"]["test"]
    assert m["rows"]["train"] + m["rows"]["test"] == 4521
    assert m["accuracy"] == pytest.approx((cm["tp"] + cm["tn"]) / m["rows"]["test"])
    assert m["portable_max_abs_diff"] < 1e-6


def test_gate_promoted_it_and_show_lists_it(trained, tmp_path):
    registry, version, stdout = trained
    assert registry.champion()["version"] == version
    assert "promoted to champion" in stdout
    shown = _cli("registry", "show", "--model", "bank-marketing", "--storage-root", registry.root)
    assert shown.returncode == 0
    assert f"* {version}" in shown.stdout and f"champion: {version}" in shown.stdout


def test_saved_spark_model_and_portable_model_agree(trained, spark, bank_spec):
    from pyspark.ml import PipelineModel

    from spark_jobs.data.contract import inspect_input, read_checked
    from spark_jobs.training.features import with_label, with_positive_probability

    registry, version, _ = trained
    spark_model = PipelineModel.load(registry.version_uri(version) + "/spark_model")
    portable = registry.load_portable()  # the champion, checksum verified
    data = with_label(read_checked(spark, inspect_input(str(BANK), bank_spec), bank_spec), bank_spec)
    rows = with_positive_probability(spark_model.transform(data)).toPandas()
    assert np.max(np.abs(portable.predict_proba(rows) - rows["p_positive"].to_numpy())) < 1e-6


def test_a_killed_run_leaves_no_complete_version_and_the_champion_stays(trained):
    registry, champion, _ = trained
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spark_jobs",
            "train",
            *train_args(BANK, registry.root, "--version", "killed", "--run-id", "night-1"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    staging = Path(registry.staging_uri("killed"))
    deadline = time.monotonic() + 300
    while not (staging / "spark_model").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the Python driver and its JVM, as an OOM killer would
    proc.wait(timeout=30)

    assert "killed" not in registry.versions()
    assert registry.champion()["version"] == champion
    # Another run is refused while the killed run's claim lives (it expires 10 minutes after its
    # last renewal); the same run's retry takes it over and trains the version id cleanly.
    other = _cli(
        "train",
        *train_args(BANK, registry.root, "--version", "killed", "--run-id", "night-2"),
    )
    assert other.returncode == 4 and "is being written by night-1" in other.stderr, other.stderr[-2000:]
    again = _cli(
        "train",
        *train_args(BANK, registry.root, "--version", "killed", "--run-id", "night-1"),
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "killed" in registry.versions() and not staging.exists()
