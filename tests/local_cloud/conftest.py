from __future__ import annotations

import pytest

from local_cloud.airflow.offline import LAMBDA_ROLE
from local_cloud.process import DEFAULT_IMAGES, running_emulator

# Small images for the Kubernetes tests: pods whose command is a `python -c` script start in a blink.
TOOLS_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM python:3.11-slim AS base
ARG APP=/app
WORKDIR $APP
ENV PYTHONUNBUFFERED=1 \\
    HOME=/scratch \\
    TMPDIR=/scratch
ENV GREETING hello from the image
USER 10001:10001
ENTRYPOINT ["python", "-c"]
CMD ["print('the image CMD ran')"]
"""
ROOTED_DOCKERFILE = """\
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["python", "-c"]
"""


@pytest.fixture(scope="session")
def emulator_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("emulator")


@pytest.fixture(scope="session")
def test_images(tmp_path_factory):
    """Repository name -> Dockerfile: the project's job image and two small test images."""
    folder = tmp_path_factory.mktemp("images")
    (folder / "tools.Dockerfile").write_text(TOOLS_DOCKERFILE)
    (folder / "rooted.Dockerfile").write_text(ROOTED_DOCKERFILE)
    return {
        **DEFAULT_IMAGES,
        "local-cloud-test/tools": folder / "tools.Dockerfile",
        "local-cloud-test/rooted": folder / "rooted.Dockerfile",
    }


@pytest.fixture(scope="session")
def emulator(emulator_dir, test_images):
    with running_emulator(
        emulator_dir, buckets=["logs"], roles=[LAMBDA_ROLE], images=test_images
    ) as endpoint:
        yield endpoint


@pytest.fixture
def emulator_journal(emulator, emulator_dir):
    return emulator_dir / "requests.jsonl"


@pytest.fixture
def kubernetes_journal(emulator, emulator_dir):
    return emulator_dir / "kubernetes.jsonl"
