"""Parse time of each DAG file, as Airflow's DAG processor measures it; prints one JSON document.

`cold_seconds`: the first parse in a fresh interpreter that has imported Airflow (the file's own
imports, providers included, are paid here). `warm_median_seconds`: later parses of the same
file in that interpreter, which is what each parsing loop costs once modules are cached.
Airflow warns at dagbag_import_timeout (30 s by default); the goal is well under 1 s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 5

_MEASURE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
times = []
for _ in range(int(sys.argv[2])):
    bag = DagBag(dag_folder=sys.argv[1])
    assert not bag.import_errors, bag.import_errors
    times.append(sum(s.duration.total_seconds() for s in bag.dagbag_stats))
tasks = sum(len(d.tasks) for d in bag.dags.values())
print(json.dumps({"times": times, "dags": len(bag.dags), "tasks": tasks}))
"""


def measure(path: Path, home: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(REPEATS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ
        | {
            "PYTHONPATH": str(ROOT / "plugins"),
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        },
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    times = result.pop("times")
    return result | {
        "cold_seconds": round(times[0], 3),
        "warm_median_seconds": round(statistics.median(times[1:]), 3),
    }


def main() -> None:
    files = sorted((ROOT / "dags").glob("*.py"))
    with tempfile.TemporaryDirectory() as home:
        report = {path.name: measure(path, home) for path in files if not path.name.startswith("_")}
    print(json.dumps({"benchmark": "dag_parse", "repeats": REPEATS, "files": report}, indent=1))


if __name__ == "__main__":
    main()
