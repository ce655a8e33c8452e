from __future__ import annotations

import pytest

from local_cloud.process import running_emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("emulator"), buckets=["logs"]) as endpoint:
        yield endpoint
