"""One Parquet day scored end to end by each method, interleaved; prints one JSON document.

The baseline of issue 15 (batch scoring at the speed of the machine). Every method reads the
same day (bank-full's features repeated to --rows, one Parquet file), scores it with the same
model (trained once by the project's training job on bank.csv) and writes Parquet. Each run is
a fresh process: `seconds` is its wall time from start to exit, `peak_mb` the peak resident
memory of its whole process tree (sampled from /proc every 20 ms: a JVM started by the job
counts, which `/usr/bin/time -v` misses), best and median of --repeat rounds, methods
interleaved within each round so a busy moment hits them all.

- job: the project's `python -m spark_jobs score` as the scoring pod runs it: the Arrow engine
  (row checks in pyarrow.compute, the numpy `Scorer`, staged commit, no JVM);
- job_spark: the same job with `--engine spark` (EMR's: row checks as Spark Columns, pandas UDF);
- spark_bare: the barest Spark road: read -> the model as a Column expression -> write, no checks;
- spark_pipeline: Spark's `PipelineModel.transform` in the JVM, read -> score -> write;
- pandas_sklearn: what a data scientist writes: pandas, the portable model in scikit-learn;
- arrow_numpy: Arrow record batches streamed through the portable numpy `Scorer`, one process.

Goals (issue 15): the job within 1.5x of arrow_numpy at 2,000,000 rows and under 3 s at 2,000;
peak memory under 1 GB at any size; the Spark engine within 1.5x of spark_bare. `goals` says
which hold today.

Usage: python bench/bench_scoring_day.py [--rows 2000000] [--small-rows 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BANK = ROOT / "data" / "bank" / "bank.csv"
SPEC = ROOT / "specs" / "bank_marketing.yaml"
MODEL, VERSION = "bank-marketing", "bench"
GOALS = {"job_vs_arrow_numpy": 1.5, "job_small_seconds": 3.0, "peak_mb": 1024, "spark_vs_bare": 1.5}

# Each method is a small program run as `python -c`; argv: day, model folder, output folder.
_PANDAS_SKLEARN = """
import sys, pandas as pd
from spark_jobs.registry.portable import PortableModel
day, model, out = sys.argv[1:4]
portable = PortableModel.from_bytes(open(model + '/portable/model.json', 'rb').read())
frame = pd.read_parquet(day)
frame['probability'] = portable.predict_proba(frame)
frame.to_parquet(out + '/part-0.parquet')
"""
_ARROW_NUMPY = """
import json, sys, pyarrow as pa, pyarrow.parquet as pq
from spark_jobs.registry.portable import Scorer
day, model, out = sys.argv[1:4]
scorer = Scorer(json.load(open(model + '/portable/model.json')))
source = pq.ParquetFile(day)
writer = None
for batch in source.iter_batches(batch_size=65536):
    scored = batch.append_column('probability', pa.array(scorer.probabilities(batch.to_pandas())))
    writer = writer or pq.ParquetWriter(out + '/part-0.parquet', scored.schema)
    writer.write_batch(scored)
writer.close()
"""
_SPARK_BARE = """
import json, sys
from spark_jobs.scoring.score import probability_column
from spark_jobs.session import get_spark
day, model, out = sys.argv[1:4]
spark = get_spark('bench-bare')
doc = json.load(open(model + '/portable/model.json'))
scored = spark.read.parquet(day).withColumn('probability', probability_column(doc))
scored.write.mode('overwrite').parquet(out)
"""
_SPARK_PIPELINE = """
import sys
from pyspark.ml import PipelineModel
from spark_jobs.session import get_spark
day, model, out = sys.argv[1:4]
spark = get_spark('bench-pipeline')
scored = PipelineModel.load(model + '/spark_model').transform(spark.read.parquet(day))
scored.drop('features', 'rawPrediction').write.mode('overwrite').parquet(out)
"""


def progress(message: str) -> None:
    print(f"[bench_scoring_day] {message}", file=sys.stderr, flush=True)


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak MB of the process tree of one run; a failed run raises."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{command[2][:40]!r}... exited {proc.returncode}: {stderr.decode()[-2000:]}")
    return seconds, peak / 2**20


def write_day(path: Path, rows: int) -> None:
    """bench_scoring's rows (bank-full's features repeated, typed as the spec says), one file."""
    from bench_scoring import pandas_frame

    from spark_jobs.spec import load_spec

    pandas_frame(load_spec(str(SPEC)), rows).to_parquet(path, index=False, row_group_size=500_000)


def commands(day: Path, root: Path, out: Path) -> dict[str, list[str]]:
    model = root / "models" / MODEL / "versions" / VERSION
    py = sys.executable
    job = [py, "-m", "spark_jobs", "score", "--storage-root", str(root), "--model", MODEL]
    job += ["--date", "2026-01-01", "--input", str(day), "--model-version", VERSION]
    return {
        "job": job,
        "job_spark": [*job, "--engine", "spark"],
        "spark_bare": [py, "-c", _SPARK_BARE, str(day), str(model), str(out / "bare")],
        "spark_pipeline": [py, "-c", _SPARK_PIPELINE, str(day), str(model), str(out / "spark")],
        "pandas_sklearn": [py, "-c", _PANDAS_SKLEARN, str(day), str(model), str(out)],
        "arrow_numpy": [py, "-c", _ARROW_NUMPY, str(day), str(model), str(out)],
    }


def summarise(runs: list[tuple[float, float]], rows: int) -> dict[str, Any]:
    seconds = [s for s, _ in runs]
    best = min(seconds)
    return {
        "seconds": round(best, 2),
        "median_seconds": round(statistics.median(seconds), 2),
        "rows_per_s": round(rows / best),
        "peak_mb": round(max(m for _, m in runs)),
        "runs_seconds": [round(s, 2) for s in seconds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the large day")
    parser.add_argument("--small-rows", type=int, default=2_000, help="rows in the small day (make run's)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds; the best run counts")
    args = parser.parse_args()
    env = os.environ | {"SPARK_LOCAL_MASTER": f"local[{os.cpu_count() or 1}]"}

    with tempfile.TemporaryDirectory(prefix="bench-day-") as tmp:
        work = Path(tmp)
        root = work / "storage"
        progress("training the model on bank.csv with the project's training job")
        train = [sys.executable, "-m", "spark_jobs", "train", "--input", str(BANK), "--spec", str(SPEC)]
        train += ["--storage-root", str(root), "--version", VERSION]
        subprocess.run(train, cwd=ROOT, env=env, check=True, capture_output=True)
        sizes: dict[str, Any] = {}
        for rows in (args.rows, args.small_rows):
            day = work / f"day-{rows}.parquet"
            write_day(day, rows)
            progress(f"{rows:,} rows: {args.repeat} interleaved round(s) of 6 methods")
            runs: dict[str, list[tuple[float, float]]] = {}
            for _ in range(args.repeat):
                for name, command in commands(day, root, work / "out").items():
                    (work / "out").mkdir(exist_ok=True)
                    runs.setdefault(name, []).append(measure(command, env))
                    subprocess.run(["rm", "-rf", str(work / "out"), str(root / "scores")], check=True)
            sizes[str(rows)] = {name: summarise(r, rows) for name, r in runs.items()}

    large, small = sizes[str(args.rows)], sizes[str(args.small_rows)]
    ratio = large["job"]["seconds"] / large["arrow_numpy"]["seconds"]
    peak = max(size["job"]["peak_mb"] for size in sizes.values())
    print(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "sizes": sizes,
                "job_vs_arrow_numpy": round(ratio, 2),
                "goals": {
                    "job_within_1_5x_of_arrow_numpy": ratio <= GOALS["job_vs_arrow_numpy"],
                    "job_small_under_3_s": small["job"]["seconds"] < GOALS["job_small_seconds"],
                    "job_peak_under_1_gb": peak < GOALS["peak_mb"],
                    "spark_engine_within_1_5x_of_bare_spark": large["job_spark"]["seconds"]
                    <= GOALS["spark_vs_bare"] * large["spark_bare"]["seconds"],
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
