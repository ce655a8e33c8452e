"""The job environment's build cache: one build per digest on a machine, never half an archive."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from spark_jobs.shipping import environment


def _counting_build(calls: list[Path]):
    def build(reqs: str, target: environment.Target, out: Path) -> None:
        calls.append(out)
        time.sleep(0.2)  # long enough for a second caller to arrive while it builds
        out.write_bytes(b"packed " + target.platform.encode())

    return build


def test_parallel_ships_build_an_environment_once_and_share_it(tmp_path, monkeypatch):
    calls: list[Path] = []
    monkeypatch.setattr(environment, "build", _counting_build(calls))
    monkeypatch.setattr(environment, "requirements", lambda: "")
    target, seen = environment.Target(), []

    def ship() -> None:
        with environment.archive(target, tmp_path / "cache") as packed:
            seen.append(packed.read_bytes())

    threads = [threading.Thread(target=ship) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(calls) == 1 and seen == [b"packed x86_64-manylinux_2_28"] * 3
    assert calls[0].name == f"{environment.digest(target)}.tar.gz"
    # Another target is another build.
    with environment.archive(environment.Target(platform="aarch64-manylinux_2_28"), tmp_path / "cache"):
        pass
    assert len(calls) == 2


def test_without_a_writable_cache_it_builds_afresh_and_leaves_nothing(tmp_path, monkeypatch):
    calls: list[Path] = []
    monkeypatch.setattr(environment, "build", _counting_build(calls))
    monkeypatch.setattr(environment, "requirements", lambda: "")
    blocked = tmp_path / "file"
    blocked.write_text("")  # a cache folder below a file cannot be made

    with environment.archive(environment.Target(), blocked / "cache") as packed:
        assert packed.read_bytes() == b"packed x86_64-manylinux_2_28"
    assert calls == [packed] and not packed.exists() and not packed.parent.exists()
