"""The job image's inputs: its locked requirements (the pod engine's, no Spark and no JVM) and
the CLI its entrypoint runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from spark_jobs.__main__ import JOBS
from spark_jobs.shipping import environment
from tests.conftest import ROOT


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^ \\\n]+)", text, re.MULTILINE))


def test_the_image_requirements_are_the_pod_engines_locked_dependencies_without_spark(tmp_path):
    out = tmp_path / "jobs-requirements.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "spark_jobs", "package", "--image-requirements", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout) == {"requirements": str(out)}
    image, cluster = _pins(out.read_text()), _pins(environment.requirements())
    assert {"pyarrow", "numpy", "s3fs", "pydantic"} <= set(image)
    # No JVM's Python side and none of what only training, reports or the Spark engine import.
    assert not {"pyspark", "py4j", "pandas", "scikit-learn", "matplotlib", "pandera"} & set(image)
    assert not {"apache-airflow", "moto", "pytest"} & set(image)
    # The same locked versions as the cluster's environment, hash-checked by pip (--require-hashes).
    assert all(cluster[name] == version for name, version in image.items() if name in cluster)
    assert out.read_text().count("--hash=sha256:") >= len(image)


def test_the_entrypoint_lists_the_jobs_and_runs_one():
    listing = subprocess.run(
        [sys.executable, "-m", "spark_jobs", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert all(name in listing.stdout for name in JOBS)
    unknown = subprocess.run(
        [sys.executable, "-m", "spark_jobs", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "unknown job 'nope'" in unknown.stderr
    score_help = subprocess.run(
        [sys.executable, "-m", "spark_jobs", "score", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--max-rejected-ratio" in score_help.stdout


@pytest.mark.parametrize("dockerfile", ["jobs.Dockerfile", "airflow.Dockerfile"])
def test_the_images_name_no_path_of_one_cpu_architecture(dockerfile):
    """Debian's JDK lives under java-17-openjdk-<arch>: a JAVA_HOME naming amd64 breaks the image
    on arm64 (Graviton nodes, Apple silicon); without it Spark finds `java` on PATH."""
    from local_cloud.kubernetes.images import parse_dockerfile

    env = dict(parse_dockerfile(ROOT / "docker" / dockerfile).env)
    assert "PYTHONUNBUFFERED" in env or "PYTHONPATH" in env  # the parser read the ENV lines
    assert not [k for k, v in env.items() if re.search(r"amd64|x86_64|arm64|aarch64", v)], env


@pytest.mark.containers
def test_the_job_image_builds_without_a_jvm_and_runs_the_arrow_engine_as_10001():
    """docker/jobs.Dockerfile builds from the pod group's wheels alone; the container runs the job
    CLI as uid 10001 under a read-only root, imports the Arrow engine, and refuses Spark clearly."""
    from local_cloud.kubernetes.containers import EngineError, Images, find_engine

    engine = find_engine()
    if engine is None:
        pytest.skip("no container engine (podman or docker)")
    tag, _, user = Images(engine, ROOT).build("ml-scaling-jobs", ROOT / "docker" / "jobs.Dockerfile")
    assert user == "10001"
    probe = (
        "import importlib.util, os, shutil; import spark_jobs.scoring.score_arrow; "
        "print(os.getuid(), importlib.util.find_spec('pyspark'), shutil.which('java'))"
    )
    run = ["run", "--rm", "--pull=never", "--network", "none", "--read-only", "--entrypoint", "python"]
    assert engine(*run, tag, "-c", probe).split() == ["10001", "None", "None"]
    assert "--engine" in engine(*run[:-2], tag, "score", "--help")  # the entrypoint: python -m spark_jobs
    spark = "from spark_jobs.session import get_spark; get_spark('score')"
    with pytest.raises(EngineError, match="the scoring pods' image carries the Arrow engine only"):
        engine(*run, tag, "-c", spark)
