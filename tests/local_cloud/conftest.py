from __future__ import annotations

import pytest

from local_cloud.airflow_offline import LAMBDA_ROLE
from local_cloud.process import running_emulator


@pytest.fixture(scope="session")
def emulator_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("emulator")


@pytest.fixture(scope="session")
def emulator(emulator_dir):
    with running_emulator(emulator_dir, buckets=["logs"], roles=[LAMBDA_ROLE]) as endpoint:
        yield endpoint


@pytest.fixture
def emulator_journal(emulator, emulator_dir):
    return emulator_dir / "requests.jsonl"
