"""Run a DAG offline: `python -m local_cloud.run DAG_ID [--conf JSON] [--spec FILE --input DATA]`.

Starts the emulator (with the Lambda functions of earlier runs), prepares a project-local
Airflow (.airflow/, SQLite), runs
`airflow dags test` with the same operators as production, prints every task's final state,
and stops the emulator, whether the run succeeded or not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from local_cloud.airflow.offline import DEFAULT_SPEC, DEFAULT_STORAGE_ROOT, dags_test, offline_airflow
from local_cloud.process import ROOT, StartupError
from local_cloud.server import CREDENTIALS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cloud.run", description=__doc__.split("\n")[0])
    parser.add_argument("dag_id")
    parser.add_argument("--conf", default="{}", help="run configuration (JSON), as in the trigger form")
    # Now, not midnight: `airflow dags test` records the logical date as the run's start, so a
    # date alone would show a run of today as lasting since midnight.
    parser.add_argument(
        "--logical-date", default=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), help="default: now"
    )
    parser.add_argument(
        "--storage-root", default=DEFAULT_STORAGE_ROOT, help="an s3:// URI in the emulator, or a local folder"
    )
    parser.add_argument("--input", default=str(ROOT / "data" / "bank" / "bank-full.csv"))
    parser.add_argument(
        "--spec", default=str(DEFAULT_SPEC), help="the input's dataset spec (Variable ml_spec_uri)"
    )
    parser.add_argument(
        "--home", type=Path, default=ROOT / ".airflow", help="AIRFLOW_HOME and the emulator's files"
    )
    args = parser.parse_args(argv)
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    conf = json.loads(args.conf)
    spec = ROOT / args.spec
    asks = {"records", "records_uri"} & set(conf)
    if args.dag_id == "spot_predictions" and not asks and spec != DEFAULT_SPEC:
        # The form's example records are the bank's: ask about the first records of this dataset.
        conf["records"] = example_records(ROOT / args.input, spec)
    storage_root = args.storage_root if "://" in args.storage_root else str(ROOT / args.storage_root)
    try:
        with offline_airflow(home, storage_root, ROOT / args.input, spec=spec) as (env, _):
            code, output, states = dags_test(env, args.dag_id, conf, args.logical_date)
            log_path = home / f"{args.dag_id}.log"
            log_path.write_text(output)
            print(f"airflow dags test {args.dag_id} {args.logical_date}: exit {code} (log: {log_path})")
            for task_id, state in states.items():
                print(f"  {state:<16} {task_id}")
            if code != 0:
                print(output[-3000:], file=sys.stderr)
                return code
            # What the run wrote, read while the emulator still serves it.
            os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", *CREDENTIALS)})
            if args.dag_id == "spot_predictions":
                show_response(storage_root)
            elif args.dag_id == "batch_scoring":
                show_scores(storage_root, conf.get("date") or args.logical_date[:10])
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


def example_records(data: Path, spec_file: Path, count: int = 2) -> list[dict[str, Any]]:
    """The first `count` rows of a dataset as spot-prediction records: its features, by the spec's
    names and types."""
    import pandas as pd

    from spark_jobs.spec import load_spec

    spec = load_spec(str(spec_file))
    if spec.format == "parquet":
        rows = pd.read_parquet(data).head(count).astype(object)
    else:
        csv = spec.csv
        rows = pd.read_csv(
            data, sep=csv.delimiter, quotechar=csv.quote, encoding=csv.encoding, nrows=count, dtype=str
        )
    records = []
    for row in rows.to_dict("records"):
        record = {}
        for name, column in spec.columns.items():
            if column.role in ("categorical", "numeric"):
                value = row[column.source or name]
                record[name] = value if column.type == "string" else json.loads(str(value))
        records.append(record)
    return records


def show_response(storage_root: str) -> None:
    """The answer the spot_predictions run just stored (responses are kept by run id)."""
    from spark_jobs import storage

    fs, path = storage.filesystem(storage.join(storage_root, "predictions", "spot"))
    responses = [
        info for info in fs.find(path, detail=True).values() if info["name"].endswith("/response.json")
    ]
    if responses:
        latest = max(
            responses, key=lambda info: (info.get("LastModified") or info.get("mtime"), info["name"])
        )
        answer = json.loads(fs.cat_file(latest["name"]))
        print(f"\n{fs.unstrip_protocol(latest['name'])}:")
        print(f"model {answer['model']} version {answer['model_version']}, {answer['count']} record(s)")
        for i, p in enumerate(answer.get("predictions", [])):
            print(f"  record {i}: {p['label']:<4} p={p['probability']:.4f}")


def show_scores(storage_root: str, date: str) -> None:
    """The summary the batch_scoring run committed with its partition."""
    from spark_jobs import storage

    fs, path = storage.filesystem(storage.join(storage_root, "scores"))
    for found in sorted(fs.glob(f"{path}/*/ds={date}/_summary.json")):
        summary = json.loads(fs.cat_file(found))
        if summary["engine"] == "arrow":
            where = f"in {summary.get('shards', 1)} pod(s), {summary['arrow_batches']} Arrow batch(es)"
        else:
            where = "in one Spark step"
        print(f"\n{fs.unstrip_protocol(found).rsplit('/', 1)[0]}:")
        print(
            f"model {summary['model']} version {summary['model_version']}: {summary['rows_scored']:,} of "
            f"{summary['rows_in']:,} record(s) scored, {summary['rows_rejected']:,} rejected "
            f"{where}, {summary['engine']} engine"
        )


if __name__ == "__main__":
    sys.exit(main())
