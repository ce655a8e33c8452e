"""Batch-scoring throughput of the pandas UDF against the machine's ceiling; prints one JSON document.

One model (trained by Spark on data/bank/bank.csv with the project's training code) and one set
of rows (bank-full's features repeated to --rows, typed as the spec says) for every method; rows
per second, best of --repeat after a warm-up:

- pandas_udf: `probability_udf` on a struct of the features, as the scoring job's Spark engine
  applied it until issue 15 (it now scores with the model as a Column expression),
  in local Spark on all cores with Arrow, into the noop sink (every row scored, nothing written);
  at Spark's default maxRecordsPerBatch and at each other --batch-sizes value.
- pandas_udf_without_model: the same UDF returning zeros: the cost of moving rows to Python and
  back, the floor under any Python UDF.
- row_udf: a classic Python UDF (rows pickled, no Arrow) calling `Scorer.probability` per row,
  on the first --row-udf-rows rows.
- numpy_one_process / numpy_all_cores: `Scorer.probabilities` on the pandas frame in this process,
  and split over one forked worker per core, each scoring its slice of the frame it inherited
  (only the result arrays travel back). numpy_all_cores is the ceiling.
- sklearn_one_process / sklearn_all_cores: `PortableModel.predict_proba`, the same two ways.

Before any timing the outputs are checked to agree (pandas UDF and row UDF on a sample, numpy and
scikit-learn on every row, and the sum of the pandas UDF's output over every row).
Goals: the pandas UDF at >= 60% of the all-cores ceiling and >= 20x the row-at-a-time UDF.

Usage: python bench/bench_scoring.py [--rows 1000000] [--repeat 3] [--row-udf-rows 200000]
       [--batch-sizes 10000,50000] [--partitions N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Module level because pandas_udf reads the UDF's type hints from this module's globals.
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BANK = ROOT / "data" / "bank" / "bank.csv"
BANK_FULL = ROOT / "data" / "bank" / "bank-full.csv"
SPEC = ROOT / "specs" / "bank_marketing.yaml"
SPARK_DEFAULT_BATCH = 10_000  # spark.sql.execution.arrow.maxRecordsPerBatch's default
SAMPLE_ROWS = 5_000
TOLERANCE = 1e-9
GOALS = {"ceiling_fraction": 0.6, "row_udf_factor": 20}

# Set before the worker pool forks, so workers inherit the frame and the models instead of
# receiving them pickled.
_FRAME: Any = None
_SCORER: Any = None
_PORTABLE: Any = None


def progress(message: str) -> None:
    print(f"[bench_scoring] {message}", file=sys.stderr, flush=True)


_WORKER_SCORERS: dict[str, Any] = {}


def probability_udf(doc: bytes, loads: Any, batches: Any) -> Any:
    """A pandas UDF (iterator of Arrow batches) giving the positive-class probability of a struct
    of the model's features, the model built once per Python worker (Spark reuses them);
    `loads` and `batches` are accumulators."""
    import hashlib

    from pyspark.sql.functions import pandas_udf

    from spark_jobs.registry.portable import Scorer

    digest = hashlib.sha256(doc).hexdigest()

    def probability(frames: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        scorer = _WORKER_SCORERS.get(digest)
        if scorer is None:
            scorer = _WORKER_SCORERS[digest] = Scorer(json.loads(doc))
            loads.add(1)
        for frame in frames:
            batches.add(1)
            yield pd.Series(scorer.probabilities(frame))

    return pandas_udf(probability, "double")  # type: ignore[call-overload]


def best_of(run: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times), times


def result(rows: int, times: tuple[float, list[float]], **extra: Any) -> dict[str, Any]:
    best, runs = times
    return {
        "rows": rows,
        "seconds": round(best, 4),
        "rows_per_s": round(rows / best),
        "runs_seconds": [round(t, 4) for t in runs],
        **extra,
    }


def train_model(spark: Any, spec: Any) -> bytes:
    """The portable export of a model Spark trains on bank.csv, as the registry stores it."""
    from spark_jobs import storage
    from spark_jobs.data.contract import inspect_input, read_checked
    from spark_jobs.training.features import TrainParams, with_label
    from spark_jobs.training.train import fit_and_evaluate

    data = with_label(read_checked(spark, inspect_input(str(BANK), spec), spec), spec)
    trained = fit_and_evaluate(data, spec, TrainParams())
    spark.catalog.clearCache()
    return storage.dump_json(trained["portable"])


def pandas_frame(spec: Any, rows: int) -> Any:
    """bank-full's feature columns repeated to `rows` rows, typed as the spec says."""
    import pandas as pd

    dtypes = {"integer": "int32", "long": "int64", "double": "float64", "string": "object"}
    base = pd.read_csv(BANK_FULL, sep=";", usecols=spec.features)[spec.features]
    base = base.astype({name: dtypes[spec.columns[name].type] for name in spec.features})
    copies = -(-rows // len(base))
    return pd.concat([base] * copies, ignore_index=True).iloc[:rows].reset_index(drop=True)


def spark_frame(spark: Any, spec: Any, frame: Any, partitions: int) -> Any:
    """`frame` as a Spark DataFrame cached in memory, in `partitions` partitions, counted."""
    from pyspark.sql import types as T

    types = {
        "integer": T.IntegerType(),
        "long": T.LongType(),
        "double": T.DoubleType(),
        "string": T.StringType(),
    }
    schema = T.StructType([T.StructField(n, types[spec.columns[n].type]) for n in spec.features])
    df = spark.createDataFrame(frame, schema).repartition(partitions).cache()
    if df.count() != len(frame):
        raise RuntimeError("the Spark frame lost rows")
    return df


def _numpy_slice(bounds: tuple[int, int]) -> Any:
    return _SCORER.probabilities(_FRAME.iloc[bounds[0] : bounds[1]])


def _sklearn_slice(bounds: tuple[int, int]) -> Any:
    return _PORTABLE.predict_proba(_FRAME.iloc[bounds[0] : bounds[1]])


def slices(rows: int, parts: int) -> list[tuple[int, int]]:
    edges = [rows * i // parts for i in range(parts + 1)]
    return list(itertools.pairwise(edges))


def max_diff(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.max(np.abs(np.asarray(a, dtype="float64") - np.asarray(b, dtype="float64"))))


def zeros_udf() -> Any:
    """A pandas UDF of the scoring UDF's shape (iterator of frames in, series out) that does no work."""
    from collections.abc import Iterator

    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    def zeros(frames: Any) -> Any:
        for frame in frames:
            yield pd.Series(0.0, index=frame.index)

    # Real types, not this module's postponed annotations: pandas_udf reads them to pick its kind.
    zeros.__annotations__ = {"frames": Iterator[pd.DataFrame], "return": Iterator[pd.Series]}
    return pandas_udf(zeros, "double")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to score (default: 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method; the best counts")
    parser.add_argument(
        "--row-udf-rows", type=int, default=200_000, help="rows for the slow row-at-a-time UDF"
    )
    parser.add_argument(
        "--batch-sizes",
        default=f"{SPARK_DEFAULT_BATCH},50000",
        help="comma-separated Arrow maxRecordsPerBatch values to time; the first is what `pandas_udf` "
        f"reports, as the job runs with Spark's default (default: {SPARK_DEFAULT_BATCH},50000)",
    )
    parser.add_argument("--partitions", type=int, help="Spark partitions (default: 2x cores)")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    global _FRAME, _SCORER, _PORTABLE
    import numpy as np
    from threadpoolctl import threadpool_limits

    from spark_jobs.registry.portable import PortableModel, Scorer
    from spark_jobs.session import get_spark
    from spark_jobs.spec import load_spec

    threadpool_limits(1)  # one core means one core, also inside scikit-learn's BLAS calls
    cores = os.cpu_count() or 1
    partitions = args.partitions or 2 * cores
    spec = load_spec(str(SPEC))
    features = spec.features

    progress("starting Spark and training the model on bank.csv")
    spark = get_spark("bench-scoring")
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    doc = train_model(spark, spec)
    _SCORER, _PORTABLE = Scorer(json.loads(doc)), PortableModel.from_bytes(doc)

    progress(f"building {args.rows:,} rows (pandas, and Spark in {partitions} cached partitions)")
    _FRAME = pandas_frame(spec, args.rows)
    df = spark_frame(spark, spec, _FRAME, partitions)
    row_rows = min(args.row_udf_rows, args.rows)
    df_rows = df if row_rows == args.rows else spark_frame(spark, spec, _FRAME.iloc[:row_rows], partitions)
    warm = spark_frame(spark, spec, _FRAME.iloc[: min(20_000, args.rows)], partitions)

    from pyspark.sql import functions as F

    loads, batches = spark.sparkContext.accumulator(0), spark.sparkContext.accumulator(0)
    pandas_udf = probability_udf(doc, loads, batches)
    scorer, names = _SCORER, tuple(features)

    def row_probability(*values: Any) -> float:
        return scorer.probability(dict(zip(names, values, strict=True)))

    row_udf = F.udf(row_probability, "double", useArrow=False)
    spark.conf.set("spark.sql.execution.pythonUDF.arrow.enabled", "false")

    def noop(frame: Any, column: Any) -> None:
        frame.select(column.alias("p")).write.format("noop").mode("overwrite").save()

    # -- agreement, before anything is timed -----------------------------------------------------
    progress("checking that the methods agree")
    sample = _FRAME.iloc[:SAMPLE_ROWS]
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_sizes[0]))
    udf_sample = (
        df.select(*features, pandas_udf(F.struct(*features)).alias("p")).limit(SAMPLE_ROWS).toPandas()
    )
    row_sample = df.select(*features, row_udf(*features).alias("p")).limit(SAMPLE_ROWS).toPandas()
    numpy_all = _SCORER.probabilities(_FRAME)
    sklearn_all = _PORTABLE.predict_proba(_FRAME)
    udf_sum = df.select(F.sum(pandas_udf(F.struct(*features)))).first()[0]
    agreement = {
        "pandas_udf_vs_numpy_sample": max_diff(udf_sample["p"], _SCORER.probabilities(udf_sample)),
        "pandas_udf_vs_sklearn_sample": max_diff(udf_sample["p"], _PORTABLE.predict_proba(udf_sample)),
        "row_udf_vs_numpy_sample": max_diff(row_sample["p"], _SCORER.probabilities(row_sample)),
        "numpy_vs_sklearn_all_rows": max_diff(numpy_all, sklearn_all),
        # Summation order differs; the bound allows for rounding, not for a missed or wrong row.
        "pandas_udf_sum_vs_numpy_sum_relative": abs(udf_sum - float(np.sum(numpy_all)))
        / float(np.sum(numpy_all)),
    }
    if not all(v < TOLERANCE for v in agreement.values()) or len(udf_sample) != min(SAMPLE_ROWS, args.rows):
        raise SystemExit(f"bench_scoring: the methods disagree, not timing them: {agreement}")
    progress(f"agreement {agreement}")

    methods: dict[str, dict[str, Any]] = {}

    # -- numpy and scikit-learn, in this process and across all cores --------------------------------
    progress("numpy and scikit-learn in one process")
    _SCORER.probabilities(sample)
    methods["numpy_one_process"] = result(
        args.rows, best_of(lambda: _SCORER.probabilities(_FRAME), args.repeat)
    )
    _PORTABLE.predict_proba(sample)
    methods["sklearn_one_process"] = result(
        args.rows, best_of(lambda: _PORTABLE.predict_proba(_FRAME), args.repeat)
    )

    progress(f"numpy and scikit-learn in {cores} forked workers")
    parts = slices(args.rows, cores)
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        for name, work, reference in (
            ("numpy_all_cores", _numpy_slice, numpy_all),
            ("sklearn_all_cores", _sklearn_slice, sklearn_all),
        ):
            out = pool.map(work, parts, chunksize=1)  # warm-up, also touches every page once
            if max_diff(np.concatenate(out), reference) != 0.0:
                raise SystemExit(f"bench_scoring: {name} differs from the same method in one process")
            methods[name] = result(
                args.rows, best_of(lambda w=work: pool.map(w, parts, chunksize=1), args.repeat), workers=cores
            )

    # -- Spark -----------------------------------------------------------------------------------
    progress("row-at-a-time Python UDF")
    noop(warm, row_udf(*features))
    methods["row_udf"] = result(row_rows, best_of(lambda: noop(df_rows, row_udf(*features)), args.repeat))

    for size in batch_sizes:
        progress(f"pandas UDF, maxRecordsPerBatch={size}")
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(size))
        noop(warm, pandas_udf(F.struct(*features)))
        before = batches.value
        times = best_of(lambda: noop(df, pandas_udf(F.struct(*features))), args.repeat)
        key = "pandas_udf" if size == batch_sizes[0] else f"pandas_udf_batch_{size}"
        methods[key] = result(
            args.rows,
            times,
            max_records_per_batch=size,
            arrow_batches_per_run=(batches.value - before) // args.repeat,
        )
    # The same UDF shape returning zeros: what moving the rows to Python and back costs alone.
    progress(f"pandas UDF without the model, maxRecordsPerBatch={batch_sizes[0]}")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_sizes[0]))
    zeros = zeros_udf()
    noop(warm, zeros(F.struct(*features)))
    methods["pandas_udf_without_model"] = result(
        args.rows, best_of(lambda: noop(df, zeros(F.struct(*features))), args.repeat)
    )
    spark.catalog.clearCache()

    ceiling = methods["numpy_all_cores"]["rows_per_s"]
    udf_rate, row_rate = methods["pandas_udf"]["rows_per_s"], methods["row_udf"]["rows_per_s"]
    best_udf = max((m for m in methods if m.startswith("pandas_udf")), key=lambda m: methods[m]["rows_per_s"])
    report = {
        "bench": "scoring",
        "machine": {
            "cores": cores,
            "python": platform.python_version(),
            "spark": spark.version,
            "spark_master": spark.sparkContext.master,
            "spark_partitions": partitions,
            "python_worker_reuse": spark.conf.get("spark.python.worker.reuse", "true"),
        },
        "rows": args.rows,
        "model": {"numeric": len(spec.numeric), "categorical": len(spec.categorical)},
        "methods": methods,
        "pandas_udf_vs_ceiling": round(udf_rate / ceiling, 3),
        "pandas_udf_vs_row_udf": round(udf_rate / row_rate, 1),
        "best_pandas_udf": {
            "method": best_udf,
            "vs_ceiling": round(methods[best_udf]["rows_per_s"] / ceiling, 3),
            "vs_row_udf": round(methods[best_udf]["rows_per_s"] / row_rate, 1),
        },
        # How much of the pandas UDF's time is the model: the rest is Spark <-> Python transfer.
        "pandas_udf_vs_without_model": round(udf_rate / methods["pandas_udf_without_model"]["rows_per_s"], 3),
        "python_worker_model_loads": loads.value,
        "agreement_max_abs_diff": agreement,
        "goals": {
            "pandas_udf_at_least_60pct_of_ceiling": udf_rate >= GOALS["ceiling_fraction"] * ceiling,
            "pandas_udf_at_least_20x_row_udf": udf_rate >= GOALS["row_udf_factor"] * row_rate,
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
