"""A day scored in 1, 2 and 4 shards through the emulator's pods, side by side; prints JSON.

The fan-out of issue 15: one Parquet day of bank-full's features repeated to --rows (row groups
of a quarter of it), split by `spark_jobs.scoring.shards.plan`, each shard scored by the pod the
batch_scoring DAG would create (the same KubernetesPodOperator request: image, arguments,
limits), all shards' pods created at once on the emulator's kubelet (host processes: a local
storage root is not visible inside a container), then `shards.commit`. Wall time from the
first pod created to the day committed; the ideal for n shards is the one-shard time divided
by min(n, cores), and `efficiency` is ideal / measured. Goal: within 1.2x of the ideal.

Usage: python bench/bench_shards.py [--rows 2000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "bench"))
BANK = ROOT / "data" / "bank" / "bank.csv"
SPEC = ROOT / "specs" / "bank_marketing.yaml"
MODEL, VERSION, DATE, NAMESPACE = "bank-marketing", "bench", "2026-01-01", "ml-scaling"
GOAL = 1.2


def progress(message: str) -> None:
    print(f"[bench_shards] {message}", file=sys.stderr, flush=True)


def pod_body(where: dict[str, Any], shard: dict[str, Any], name: str, threads: int = 0) -> dict[str, Any]:
    """The pod batch_scoring's mapped `score` task would create for this shard; `threads`, when
    not 0, replaces its cap on pyarrow's CPU pool (OMP_NUM_THREADS: the pod's CPU limit)."""
    from kubernetes.client import ApiClient
    from scaling_platform.batch_scoring import scoring_arguments, scoring_pod
    from scaling_platform.pod_operators import JobPodOperator

    op = JobPodOperator(task_id="score", arguments=scoring_arguments(where, shard), **scoring_pod())
    op.image, op.namespace = "ml-scaling-jobs:latest", NAMESPACE
    body: dict[str, Any] = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))
    body["metadata"]["name"] = name
    if threads:
        container = body["spec"]["containers"][0]
        env = [e for e in container.get("env", []) if e["name"] != "OMP_NUM_THREADS"]
        container["env"] = [*env, {"name": "OMP_NUM_THREADS", "value": str(threads)}]
    return body


def run_shards(core: Any, root: Path, count: int, run: str, threads: int) -> float:
    from spark_jobs.data.contract import inspect_input
    from spark_jobs.data.partitions import input_uri
    from spark_jobs.scoring import shards
    from spark_jobs.spec import load_spec

    spec = load_spec(str(SPEC))
    where = {
        "storage_root": str(root),
        "model": MODEL,
        "date": DATE,
        "input_uri": input_uri(str(root), MODEL, DATE),
        "model_version": VERSION,
        "max_rejected_ratio": 0.05,
        "run_id": run,
    }
    inp = inspect_input(where["input_uri"], spec, columns=spec.features, fmt="auto")
    planned = shards.plan(inp, max(1, -(-_rows(inp) // count)), count)
    assert len(planned) == count, planned
    started = time.perf_counter()
    names = [f"bench-{run}-{s['index']}" for s in planned]
    for shard, name in zip(planned, names, strict=True):
        core.create_namespaced_pod(NAMESPACE, pod_body(where, shard, name, threads))
    while True:
        phases = [core.read_namespaced_pod(n, NAMESPACE).status.phase for n in names]
        if any(p == "Failed" for p in phases):
            raise RuntimeError(f"a shard's pod failed: {phases}")
        if all(p == "Succeeded" for p in phases):
            break
        time.sleep(0.05)
    summary = shards.commit(str(root), MODEL, DATE, run, count, inp.fingerprint, 0.05)
    seconds = time.perf_counter() - started
    assert summary["rows_in"] == _rows(inp), summary
    for name in names:
        core.delete_namespaced_pod(name, NAMESPACE)
    return seconds


def _rows(inp: Any) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in inp.files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds; the best run counts")
    parser.add_argument(
        "--pod-threads", type=int, default=0, help="pyarrow's threads in each pod (default: its CPU limit)"
    )
    args = parser.parse_args()
    import kubernetes
    from bench_scoring import pandas_frame

    from local_cloud.kubernetes.api import kubeconfig
    from local_cloud.process import running_emulator
    from spark_jobs.data.partitions import input_uri
    from spark_jobs.spec import load_spec

    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        work = Path(tmp)
        root = work / "storage"
        progress("training the model on bank.csv with the project's training job")
        train = [sys.executable, "-m", "spark_jobs", "train", "--input", str(BANK), "--spec", str(SPEC)]
        subprocess.run([*train, "--storage-root", str(root), "--version", VERSION], cwd=ROOT, check=True)
        day = Path(input_uri(str(root), MODEL, DATE))
        day.mkdir(parents=True)
        frame = pandas_frame(load_spec(str(SPEC)), args.rows)
        frame.to_parquet(day / "day.parquet", index=False, row_group_size=-(-args.rows // 4))
        runs: dict[int, list[float]] = {1: [], 2: [], 4: []}
        with running_emulator(work, buckets=[], pod_runtime="process") as endpoint:
            api = kubernetes.config.new_client_from_config_dict(kubeconfig(endpoint, NAMESPACE))
            core = kubernetes.client.CoreV1Api(api)
            for round_ in range(args.repeat):
                for count in runs:
                    progress(f"round {round_ + 1}: {count} shard(s)")
                    runs[count].append(run_shards(core, root, count, f"r{round_}n{count}", args.pod_threads))
    one = min(runs[1])
    results = {}
    for count, seconds in runs.items():
        best = min(seconds)
        ideal = one / min(count, cpus)
        results[str(count)] = {
            "seconds": round(best, 2),
            "rows_per_s": round(args.rows / best),
            "ideal_seconds": round(ideal, 2),
            "efficiency": round(ideal / best, 2),
            "runs_seconds": [round(s, 2) for s in seconds],
        }
    worst = max(r["seconds"] / r["ideal_seconds"] for r in results.values())
    print(
        json.dumps(
            {
                "machine": {"cpus": cpus},
                "rows": args.rows,
                "pod_threads": args.pod_threads or "the pod's CPU limit",
                "shards": results,
                "worst_vs_ideal": round(worst, 2),
                "goals": {"within_1_2x_of_ideal": worst <= GOAL},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
