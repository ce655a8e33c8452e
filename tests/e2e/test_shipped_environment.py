"""The artefacts `spark_jobs.shipping.package` ships are enough to run the training step with spark-submit.

The emulator runs steps with this project's interpreter; this test instead runs the step the way
the cluster does: the packed environment's Python (no pyspark inside; Spark puts its own on the
path) with the job code from the zip only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pyspark
import pytest

from spark_jobs.registry.store import Registry
from spark_jobs.shipping import environment, package
from tests.conftest import BANK, train_args

pytestmark = [pytest.mark.spark, pytest.mark.emulator]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    return root, package.ship(str(root))


def test_shipping_twice_reuses_the_artefacts_and_the_environment_is_reproducible(shipped, tmp_path):
    root, first = shipped
    archive = Path(first["environment_uri"])
    stamp = archive.stat().st_mtime_ns

    assert package.ship(str(root)) == first
    assert archive.stat().st_mtime_ns == stamp  # not built again

    rebuilt = tmp_path / "again.tar.gz"
    environment.build(environment.requirements(), environment.Target(), rebuilt)
    assert rebuilt.read_bytes() == archive.read_bytes()
    # Another target is another environment.
    graviton = environment.Target(platform="aarch64-manylinux_2_28")
    assert environment.digest(graviton) != first["environment_digest"]


def test_a_second_storage_root_gets_the_environment_this_machine_built(shipped, tmp_path, monkeypatch):
    _, first = shipped

    def build_again(*_):
        raise AssertionError("the environment was built again")

    monkeypatch.setattr(environment, "build", build_again)
    second = package.ship(str(tmp_path / "second"))
    assert second["environment_digest"] == first["environment_digest"]
    assert Path(second["environment_uri"]).read_bytes() == Path(first["environment_uri"]).read_bytes()


def test_the_environment_holds_the_locked_dependencies_for_the_cluster_without_spark(shipped):
    _, artefacts = shipped
    with tarfile.open(artefacts["environment_uri"]) as tar:
        names = tar.getnames()
        interpreter = tar.getmember("bin/python3.11")
    site = "lib/python3.11/site-packages/"
    installed = {n[len(site) :].split("/")[0].lower() for n in names if n.startswith(site)}
    assert {"pandera", "sklearn", "pydantic", "fsspec", "s3fs", "matplotlib", "pandas", "numpy"} <= installed
    assert not {"pyspark", "py4j"} & installed
    assert interpreter.issym() and interpreter.linkname == "/usr/bin/python3.11"  # EMR 7's Python 3.11
    # Wheels were chosen for the nodes' platform, not this machine's.
    numpy_wheel = next(n for n in names if n.startswith(f"{site}numpy-") and n.endswith("/WHEEL"))
    with tarfile.open(artefacts["environment_uri"]) as tar:
        wheel = tar.extractfile(numpy_wheel).read().decode()
    assert "manylinux" in wheel and "x86_64" in wheel


@pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="the environment targets EMR's Python")
def test_spark_submit_trains_with_the_shipped_environment_and_code_only(shipped, tmp_path):
    _, artefacts = shipped
    unpacked = tmp_path / "environment"
    with tarfile.open(artefacts["environment_uri"]) as tar:
        tar.extractall(unpacked, filter="tar")
    python = unpacked / "bin" / "python"
    env_python = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYSPARK"))}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["SPARK_HOME"] = str(Path(pyspark.__file__).parent)  # as /usr/lib/spark on EMR
    registry_root = tmp_path / "registry"

    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "spark-submit"),
            "--master",
            "local[1]",
            "--conf",
            f"spark.pyspark.python={python}",
            "--py-files",
            artefacts["code_uri"],
            artefacts["entrypoint_uri"],
            "train",
            *train_args(BANK, registry_root, "--version", "from-archive"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # not the project: the job package must come from the zip
        timeout=600,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = Registry(str(registry_root), "bank-marketing").manifest("from-archive")
    assert manifest["python_version"] == env_python
    assert manifest["code_version"]["source_sha256"][:16] == artefacts["code_digest"]
