"""The scoring pod's image: its size and how fast a cold container answers; prints JSON.

Builds docker/jobs.Dockerfile as the emulator's kubelet does (podman or docker; the layer cache
makes a rebuild quick), then times, --repeat times each, a fresh read-only container as uid 10001
(the pod's) running (a) `score --help` through the entrypoint, and (b) Python importing the
Arrow engine, timed inside the container. Goals (issue 15): under 1 GB (the Spark image it
replaced was 2.24 GB: a JVM and pyspark alone exceed 1 GB) and a container that answers in well
under a second.

Usage: python bench/bench_job_image.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOALS = {"size_mb": 1000, "start_seconds": 1.0}
IMPORT = (
    "import time; t = time.perf_counter(); import spark_jobs.scoring.score, spark_jobs.scoring.score_arrow; "
    "print(time.perf_counter() - t)"
)


def main() -> None:
    from local_cloud.kubernetes.containers import Images, find_engine

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    engine = find_engine()
    if engine is None:
        print(json.dumps({"bench": "job_image", "skipped": "no container engine (podman or docker)"}))
        return
    tag, _, _ = Images(engine, ROOT).build("ml-scaling-jobs", ROOT / "docker" / "jobs.Dockerfile")
    size_mb = int(engine("image", "inspect", "--format", "{{.Size}}", tag).strip()) / 1e6
    run = ["run", "--rm", "--pull=never", "--network", "none", "--read-only", "--user", "10001"]
    starts, imports = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        engine(*run, tag, "score", "--help")
        starts.append(time.perf_counter() - started)
        imports.append(float(engine(*run, "--entrypoint", "python", tag, "-c", IMPORT)))
    start = statistics.median(starts)
    print(
        json.dumps(
            {
                "bench": "job_image",
                "engine": engine.name,
                "size_mb": round(size_mb),
                "score_help_seconds": {"best": round(min(starts), 3), "median": round(start, 3)},
                "engine_import_seconds": {
                    "best": round(min(imports), 3),
                    "median": round(statistics.median(imports), 3),
                },
                "goals": {
                    "under_1_gb": size_mb < GOALS["size_mb"],
                    "answers_under_1_s": start < GOALS["start_seconds"],
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
