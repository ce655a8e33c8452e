"""Cut a day's partition of unlabeled records out of a labelled dataset, for batch scoring to find.

Picks `--rows` rows of the source (the same rows for the same date, different ones for another
date), drops the target column, adds `record_id` (the row's number in the source, so scores can be
joined back to the labels) and writes `<root>/incoming/<model>/ds=<date>/records.csv` (or
`.parquet`), then `_SUCCESS`: the marker the batch_scoring DAG's sensor waits for.

Usage: python -m spark_jobs sample_input --source FILE --spec FILE --storage-root URI --date YYYY-MM-DD
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from collections.abc import Sequence
from typing import Any

from spark_jobs import storage
from spark_jobs.data.partitions import MARKER, input_uri, iso_date
from spark_jobs.errors import DataContractError, run_cli
from spark_jobs.locations import argument, storage_root_option
from spark_jobs.spec import DatasetSpec, load_spec

ID = "record_id"


def pick(rows: list[list[str]], count: int, date: str) -> list[tuple[int, list[str]]]:
    """`count` rows in source order, chosen by the date: (1-based row number, row)."""
    chosen = sorted(random.Random(date).sample(range(len(rows)), min(count, len(rows))))
    return [(i + 1, rows[i]) for i in chosen]


def unlabeled(
    header: list[str], picked: list[tuple[int, list[str]]], spec: DatasetSpec
) -> tuple[list[str], list[list[str]]]:
    """The picked rows without the target, with `record_id` first."""
    keep = [i for i, name in enumerate(header) if name != spec.target.column]
    return [ID, *(header[i] for i in keep)], [[str(n), *(row[i] for i in keep)] for n, row in picked]


def to_csv(header: list[str], rows: list[list[str]], spec: DatasetSpec) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=spec.csv.delimiter, quotechar=spec.csv.quote, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(spec.csv.encoding)


def to_parquet(header: list[str], rows: list[list[str]], spec: DatasetSpec) -> bytes:
    """Typed as the spec says (integers as int64, doubles as float64, text as strings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def typed(name: str, values: list[str]) -> Any:
        kind = spec.columns[name].type if name in spec.columns else "long"
        if kind == "string":
            return pa.array(values, pa.string())
        convert = float if kind == "double" else int
        return pa.array(
            [None if v == "" else convert(v) for v in values],
            pa.float64() if kind == "double" else pa.int64(),
        )

    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    table = pa.table({name: typed(name, list(values)) for name, values in zip(header, columns, strict=True)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def cut(source: str, spec: DatasetSpec, root: str, date: str, rows: int, fmt: str) -> dict[str, Any]:
    text = storage.read_bytes(source).decode(spec.csv.encoding)
    table = list(csv.reader(io.StringIO(text), delimiter=spec.csv.delimiter, quotechar=spec.csv.quote))
    if not table or spec.target.column not in table[0]:
        raise DataContractError(f"{source} has no header with the target column {spec.target.column!r}")
    header, picked = unlabeled(table[0], pick([r for r in table[1:] if r], rows, date), spec)
    partition = input_uri(root, spec.name, date)
    # Readers wait for the marker: take it away first, put it back once the data is complete.
    storage.remove_tree(partition)
    name = f"records.{fmt}"
    data = to_csv(header, picked, spec) if fmt == "csv" else to_parquet(header, picked, spec)
    storage.write_bytes(storage.join(partition, name), data)
    storage.write_bytes(storage.join(partition, MARKER), b"")
    return {"partition": partition, "file": name, "rows": len(picked), "date": date}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spark_jobs sample_input", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--source", default="data/bank/bank-full.csv", help="labelled CSV (default: the bank data)"
    )
    parser.add_argument(
        "--spec", default="specs/bank_marketing.yaml", type=argument("spec"), help="its dataset spec"
    )
    storage_root_option(parser)
    parser.add_argument("--date", required=True, type=iso_date, help="the partition's date, YYYY-MM-DD")
    parser.add_argument("--rows", type=int, default=2000, help="how many records (default: 2000)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return run_cli(
        lambda: print(
            json.dumps(
                cut(args.source, load_spec(args.spec), args.storage_root, args.date, args.rows, args.format)
            )
        )
    )
