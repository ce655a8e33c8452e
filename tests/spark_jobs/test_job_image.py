"""The job image's inputs: its locked requirements (Spark included, unlike EMR's environment)
and the CLI its entrypoint runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from spark_jobs import environment
from spark_jobs.__main__ import JOBS
from tests.conftest import ROOT


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^ \\\n]+)", text, re.MULTILINE))


def test_image_requirements_add_spark_to_the_jobs_locked_dependencies(tmp_path):
    out = tmp_path / "jobs-requirements.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "spark_jobs.package", "--image-requirements", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout) == {"requirements": str(out)}
    image, cluster = _pins(out.read_text()), _pins(environment.requirements())
    assert image["pyspark"] == "3.5.6" and "py4j" in image
    assert set(image) - set(cluster) == {"pyspark", "py4j"}
    assert all(image[name] == version for name, version in cluster.items())
    assert "--hash=sha256:" in out.read_text()  # pip install --require-hashes in the Dockerfile
    assert not {"apache-airflow", "moto", "pytest"} & set(image)


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
    from local_cloud.pod_runtime import parse_dockerfile

    env = dict(parse_dockerfile(ROOT / "docker" / dockerfile).env)
    assert "PYTHONUNBUFFERED" in env or "PYTHONPATH" in env  # the parser read the ENV lines
    assert not [k for k, v in env.items() if re.search(r"amd64|x86_64|arm64|aarch64", v)], env


@pytest.mark.containers
def test_the_job_image_builds_with_spark_and_the_s3a_connector_and_runs_as_10001():
    """docker/jobs.Dockerfile builds (pyspark comes only as a source distribution) and carries the
    S3A jars beside Spark's; the container runs the job CLI as uid 10001 under a read-only root."""
    from local_cloud.containers import Images, find_engine

    engine = find_engine()
    if engine is None:
        pytest.skip("no container engine (podman or docker)")
    tag, _, user = Images(engine, ROOT).build("ml-scaling-jobs", ROOT / "docker" / "jobs.Dockerfile")
    assert user == "10001"
    probe = (
        "import glob, os, pyspark; jars = os.path.join(os.path.dirname(pyspark.__file__), 'jars'); "
        "print(pyspark.__version__, os.getuid(), sorted(os.path.basename(j) for j in "
        "glob.glob(jars + '/hadoop-aws-*') + glob.glob(jars + '/aws-java-sdk-bundle-*')))"
    )
    run = ["run", "--rm", "--pull=never", "--network", "none", "--read-only", "--entrypoint", "python"]
    out = engine(*run, tag, "-c", probe)
    assert out.split(" ", 2)[:2] == ["3.5.6", "10001"]
    assert "hadoop-aws-3.3.4.jar" in out and "aws-java-sdk-bundle-1.12.262.jar" in out
    assert "score" in engine(*run[:-2], tag, "--help")  # the entrypoint: python -m spark_jobs
