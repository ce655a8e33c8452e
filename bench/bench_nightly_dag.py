"""Offline wall time of `airflow dags test nightly_training` on bank-full; prints one JSON document.

Includes starting the emulator and preparing Airflow (db migrate), as `make run` does; the
training step's own time is read from its version's manifest and metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "local_cloud.run",
                "nightly_training",
                "--storage-root",
                tmp,
                "--logical-date",
                "2026-01-01",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        states = [line.split() for line in proc.stdout.splitlines() if line.startswith("  ")]
    print(
        json.dumps(
            {
                "dag": "nightly_training",
                "input_rows": 45_211,
                "exit_code": proc.returncode,
                "wall_seconds": round(seconds, 1),
                "tasks": {task: state for state, task in states},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
