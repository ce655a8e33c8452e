"""Offline wall time of `airflow dags test nightly_training` on bank-full; prints one JSON document.

Each run includes starting the emulator and preparing Airflow (db migrate), as `make run` does.
`first_run` starts from an empty storage root, so it also builds and ships the job's Python
environment; `next_night` is the following logical date on the same root, where code and
environment are already shipped: the cost of a normal night.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(root: str, logical_date: str) -> dict:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "local_cloud.run", "nightly_training", "--storage-root", root]
        + ["--logical-date", logical_date],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    states = [line.split() for line in proc.stdout.splitlines() if line.startswith("  ")]
    return {
        "exit_code": proc.returncode,
        "wall_seconds": round(seconds, 1),
        "tasks": {task: state for state, task in states},
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = run(tmp, "2026-01-01")
        second = run(tmp, "2026-01-02")
    report = {"dag": "nightly_training", "input_rows": 45_211, "first_run": first, "next_night": second}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
