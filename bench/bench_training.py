"""Training benchmarks; prints one JSON document.

- SparkSession start-up time (fresh interpreter each time, median of 3).
- Spark training wall time (contract check, fit, evaluate, portable export and parity check) on
  bank-full and on bank-full replicated to about 1M rows.
- scikit-learn on the same rows and split sizes (read, one-hot, scale, logistic regression).

Usage: python bench/bench_training.py [--replicas 23] [--skip-large]
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BANK_FULL = ROOT / "data" / "bank" / "bank-full.csv"
SPEC = ROOT / "specs" / "bank_marketing.yaml"


def spark_startup_seconds(runs: int = 3) -> float:
    code = (
        "import time; t = time.perf_counter()\n"
        "from spark_jobs.session import get_spark\n"
        "get_spark('bench-startup').range(1).count()\n"
        "print(time.perf_counter() - t)\n"
    )
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return round(statistics.median(times), 2)


def replicate(src: Path, copies: int, dst: Path) -> int:
    lines = src.read_text().splitlines(keepends=True)
    with dst.open("w") as fh:
        fh.write(lines[0])
        for _ in range(copies):
            fh.writelines(lines[1:])
    return (len(lines) - 1) * copies


def spark_training(path: Path) -> dict[str, float]:
    from spark_jobs.data.contract import inspect_input, read_checked
    from spark_jobs.session import get_spark
    from spark_jobs.spec import load_spec
    from spark_jobs.training.features import TrainParams, with_label
    from spark_jobs.training.train import fit_and_evaluate

    spec = load_spec(str(SPEC))
    spark = get_spark("bench-train")
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    started = time.perf_counter()
    data = with_label(read_checked(spark, inspect_input(str(path), spec), spec), spec)
    checked = time.perf_counter()
    trained = fit_and_evaluate(data, spec, TrainParams())
    done = time.perf_counter()
    spark.catalog.clearCache()  # the next dataset starts without this one cached
    return {
        "seconds": round(done - started, 2),
        "contract_seconds": round(checked - started, 2),
        "fit_evaluate_export_seconds": round(done - checked, 2),
        "roc_auc": round(trained["metrics"]["roc_auc"], 4),
    }


def sklearn_training(path: Path) -> dict[str, float]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from spark_jobs.spec import load_spec

    spec = load_spec(str(SPEC))
    started = time.perf_counter()
    df = pd.read_csv(path, sep=";")
    y = (df[spec.target.column] == spec.target.positive).astype(int)
    x_train, x_test, y_train, y_test = train_test_split(df[spec.features], y, test_size=0.2, random_state=42)
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), spec.numeric),
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), spec.categorical),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    ).fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    return {"seconds": round(time.perf_counter() - started, 2), "roc_auc": round(float(auc), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=23, help="copies of bank-full for the large run")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()

    result: dict[str, object] = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "spark_startup_seconds": spark_startup_seconds(),
    }
    datasets = {"bank_full": (BANK_FULL, 45_211)}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_large:
            big = Path(tmp) / "bank-replicated.csv"
            datasets["bank_full_replicated"] = (big, replicate(BANK_FULL, args.replicas, big))
        for name, (path, rows) in datasets.items():
            result[name] = {
                "rows": rows,
                "spark_mllib": spark_training(path),
                "scikit_learn": sklearn_training(path),
            }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
