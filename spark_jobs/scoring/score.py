"""Batch scoring: one day's partition of new records, scored by a registered model.

Reads `<root>/incoming/<model>/ds=<date>/` (CSV or Parquet; `--input` for another place), checks
every row against the spec the model was trained on, scores the rows that pass with the champion
(or `--model-version`) and commits `<root>/scores/<model>/ds=<date>/`:

  part-*.parquet   the input's columns, then probability, prediction and model_version
  _rejected/       rows that break the spec, as read, with the reason (Spark skips `_` paths)
  _summary.json    rows in, scored and rejected, the model version, the output URI

The partition is written under `_staging/` and moved into place whole, replacing an earlier run's
for the same date, so a retry or re-run never leaves a half-written partition visible.

Two engines, one result (tests/spark_jobs/scoring/test_engine_parity.py): `--engine arrow` (the default,
the scoring pod's) streams the day through Arrow record batches and numpy with no JVM
(spark_jobs.scoring.score_arrow); `--engine spark` (an EMR cluster's, for days larger than a pod) checks
rows with Spark Columns and scores them with the model as a Column expression, in one pass.

Usage: python -m spark_jobs score --storage-root URI --model NAME --date YYYY-MM-DD [options]
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from spark_jobs import interface, storage
from spark_jobs.data.contract import (
    InputFiles,
    cast_column,
    inspect_input,
    quoted,
    read_raw,
    readable,
    sample,
    spark_kind,
    typed_column,
)
from spark_jobs.data.partitions import MARKER, input_uri, iso_date, output_uri
from spark_jobs.data.row_rules import ABOVE, BELOW, CORRUPT, MALFORMED, MISSING, row_rules
from spark_jobs.errors import DataContractError, JobError, run_cli
from spark_jobs.interface import ScoreSummary
from spark_jobs.locations import argument, name_argument, optional_version, storage_root_option
from spark_jobs.registry.leases import Lease, holder_id, is_free
from spark_jobs.registry.portable import Scorer
from spark_jobs.registry.store import PORTABLE, SPEC, Registry, utc_now
from spark_jobs.spec import DatasetSpec

if TYPE_CHECKING:
    from spark_jobs.scoring.score_arrow import Tally

log = logging.getLogger("spark_jobs.scoring.score")

REASON = "reject_reason"
SUMMARY, REJECTED = interface.SUMMARY, interface.REJECTED
OUTPUT_COLUMNS = ("probability", "prediction", "model_version")


# -- transforms (DataFrame in, DataFrame out, no I/O) ------------------------------------------


def row_checks(raw: Any, spec: DatasetSpec) -> list[tuple[str, Any, Any]]:
    """(what is wrong, condition, message with the value) for every rule of row_rules a row of a
    raw read can break, in their order."""
    from pyspark.sql import functions as F

    kinds = {
        name: (spark_kind(raw.schema[name].dataType), raw.schema[name].dataType.simpleString())
        for name in spec.features
    }
    typed = {name: typed_column(raw, name, spec.columns[name].type) for name in spec.features}
    checks: list[tuple[str, Any, Any]] = []
    for rule in row_rules(spec, kinds, malformed=CORRUPT in raw.columns):
        if rule.test == MALFORMED:
            cond = F.col(rule.column).isNotNull()
        elif rule.test == MISSING:
            cond = F.col(rule.column).isNull()
        elif rule.test == BELOW:
            cond = typed[rule.column].value < rule.bound
        elif rule.test == ABOVE:
            cond = typed[rule.column].value > rule.bound
        else:
            cond = typed[rule.column].condition(rule.test)
        if rule.shows_value:
            message = F.concat(F.lit(f"{rule.what}: "), sample(F.col(rule.column)))
        else:
            message = F.lit(f"{rule.what}: {rule.detail}" if rule.detail else rule.what)
        checks.append((rule.what, cond, message))
    return checks


def reject_reason(raw: Any, spec: DatasetSpec) -> Any:
    """Why a row of a raw read is rejected (every rule it breaks), or null when it is fine."""
    from pyspark.sql import functions as F

    reason = F.concat_ws("; ", *[F.when(cond, message) for _, cond, message in row_checks(raw, spec)])
    return F.when(reason != "", reason)


def check_rows(raw: Any, spec: DatasetSpec) -> Any:
    """Every row of a raw read with its features typed and `reject_reason` (null when the row is
    fine); other columns (an id, say) pass through as read."""
    passthrough = [c for c in raw.columns if c not in spec.features and c != CORRUPT]
    typed = [cast_column(raw, n, spec.columns[n].type).alias(n) for n in spec.features]
    return raw.select(*[quoted(c) for c in passthrough], *typed, reject_reason(raw, spec).alias(REASON))


def rejected_rows(raw: Any, spec: DatasetSpec) -> Any:
    """The rows that break the spec as they were read (every column, its own type), with the reason."""
    from pyspark.sql import functions as F

    return raw.withColumn(REASON, reject_reason(raw, spec)).where(F.col(REASON).isNotNull())


def probability_column(doc: Mapping[str, Any]) -> Any:
    """The portable model (its JSON) as one Spark Column over the typed features: `Scorer`'s
    arithmetic in the same order, computed in the JVM (no Python worker, no Arrow transfer)."""
    from pyspark.sql import functions as F

    margin = F.lit(float(doc["intercept"]))
    for c in doc["numeric"]:
        if c["std"] > 0:
            x = F.coalesce(F.col(c["name"]).cast("double"), F.lit(float(c["impute"])))
            margin = margin + F.lit(float(c["weight"])) * (
                (x - F.lit(float(c["mean"]))) / F.lit(float(c["std"]))
            )
    for c in doc["categorical"]:
        pairs = [F.lit(v) for k, w in zip(c["categories"], c["weights"], strict=True) for v in (k, float(w))]
        # An unknown or missing category weighs 0, as Spark's one-hot encoding and Scorer have it.
        weight = F.when(F.col(c["name"]).isNull(), None).otherwise(
            F.element_at(F.create_map(*pairs), F.col(c["name"]))
        )
        margin = margin + F.coalesce(weight, F.lit(0.0))
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-margin))


def score_rows(checked: Any, doc: Mapping[str, Any], version: str) -> Any:
    """The rows that passed their checks, with probability, prediction and model_version."""
    from pyspark.sql import functions as F

    target = doc["target"]
    return (
        checked.where(F.col(REASON).isNull())
        .drop(REASON)
        .withColumn("probability", probability_column(doc))
        .withColumn(
            "prediction",
            F.when(F.col("probability") > 0.5, target["positive"]).otherwise(target["negative"]),
        )
        .withColumn("model_version", F.lit(version))
    )


# -- the job -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score one date's partition, holding its claim from before the first read to the commit;
    or, with --shard, one shard of it into the run's shard folder (the commit publishes it)."""
    if args.shard:
        return score_shard(args)
    with claimed_partition(args.storage_root, args.model, args.date, args.run_id):
        return score_partition(args)


def _model_and_input(args: argparse.Namespace) -> tuple[str, DatasetSpec, bytes, InputFiles]:
    registry = Registry(args.storage_root, args.model)
    version = args.model_version or registry.champion_version()
    manifest = registry.manifest(version)
    spec = DatasetSpec.model_validate(json.loads(registry.read_verified(version, SPEC, manifest)))
    doc = registry.read_verified(version, PORTABLE, manifest)
    source = args.input or input_uri(args.storage_root, args.model, args.date)
    inp = inspect_input(source, spec, columns=spec.features, fmt=args.format)
    return version, spec, doc, inp


def score_partition(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    version, spec, doc, inp = _model_and_input(args)
    final = output_uri(args.storage_root, args.model, args.date)
    log.info(
        "scoring %s (%d file(s)) with %s version %s, engine %s",
        inp.uri, len(inp.files), args.model, version, args.engine,
    )  # fmt: skip
    with staged_partition(args.storage_root, args.model, args.date) as staging:
        if args.engine == "spark":
            tally, extra = spark_scores(inp, spec, doc, version, staging)
        else:
            from spark_jobs.scoring import score_arrow

            tally = score_arrow.write_scores(inp, spec, Scorer(json.loads(doc)), version, staging)
            extra = {"model_loads": 1, "arrow_batches": tally.batches}
        summary = _summary(args, version, inp, tally, extra, final, started)
        _say_done(f"{args.model} {args.date}", tally, started)
        # Checked once the scores are staged (one pass over the day); a failing day commits nothing.
        check_rejected_ratio(summary, args.max_rejected_ratio)
        storage.write_bytes(storage.join(staging, SUMMARY), storage.dump_json(summary))
        storage.replace_tree(staging, final, last=MARKER)
    return summary


def score_shard(args: argparse.Namespace) -> dict[str, Any]:
    """One shard of the day (shards.plan) into its folder of the run, its summary last. No claim
    and no gate: the commit takes the partition's claim and judges the whole day."""
    from spark_jobs.scoring import score_arrow, shards

    if args.engine != "arrow":
        raise JobError("--shard is the pods' way to split a day: it needs --engine arrow")
    started = time.monotonic()
    version, spec, doc, inp = _model_and_input(args)
    shard = args.shard
    # Files by their index in the input's sorted listing: a pod's arguments stay small whatever
    # the day holds; a listing changed since the plan fails the commit by its fingerprint.
    beyond = [p["file"] for p in shard["parts"] if p["file"] >= len(inp.files)]
    if beyond:
        raise DataContractError(
            f"shard {shard['index']}: file {beyond[0]} of the plan is not there: the input {inp.uri} "
            f"has {len(inp.files)} file(s) now"
        )
    parts = [(inp.files[p["file"]], p.get("row_groups")) for p in shard["parts"]]
    if inp.format != "parquet" and any(groups is not None for _, groups in parts):
        raise DataContractError(f"shard {shard['index']}: row groups are for Parquet input, not {inp.format}")
    out = shards.shard_uri(args.storage_root, args.model, args.date, args.run_id, shard["index"])
    storage.remove_tree(out)  # an earlier attempt's, if any: this one writes the shard whole
    log.info("scoring shard %d of %d (%d part(s)) of %s", shard["index"], shard["count"], len(parts), inp.uri)
    tally = score_arrow.write_scores(
        inp, spec, Scorer(json.loads(doc)), version, out, parts=parts, shard=shard["index"]
    )
    extra = {"model_loads": 1, "arrow_batches": tally.batches}
    summary = _summary(args, version, inp, tally, extra, out, started)
    _say_done(f"shard {shard['index']} of {shard['count']}", tally, started)
    summary["shard"] = {"index": shard["index"], "count": shard["count"]}
    summary["parts"] = tally.parts  # what the commit publishes: this attempt's, no other's
    storage.write_bytes(storage.join(out, SUMMARY), storage.dump_json(summary))
    return summary


def _say_done(what: str, tally: Tally, started: float) -> None:
    """The run's one line of totals, for a person reading the pod's or step's log."""
    seconds = time.monotonic() - started
    log.info(
        "%s: %s row(s) read, %s rejected, %s scored in %.1f s (%s rows/s)",
        what, f"{tally.rows:,}", f"{tally.rejected:,}", f"{tally.rows - tally.rejected:,}", seconds,
        f"{tally.rows / seconds:,.0f}" if seconds > 0 else "-",
    )  # fmt: skip


def _summary(
    args: argparse.Namespace,
    version: str,
    inp: InputFiles,
    tally: Tally,
    extra: dict[str, int],
    output: str,
    started: float,
) -> dict[str, Any]:
    ratio = tally.rejected / tally.rows if tally.rows else 0.0
    return {
        "model": args.model,
        "model_version": version,
        "date": args.date,
        "run_id": args.run_id,
        "engine": args.engine,
        "input": inp.uri,
        "input_format": inp.format,
        "input_fingerprint": inp.fingerprint,
        "output": output,
        "rows_in": tally.rows,
        "rows_scored": tally.rows - tally.rejected,
        "rows_rejected": tally.rejected,
        "rejected_ratio": round(ratio, 6),
        "rejected_reasons": dict(
            sorted(((k, v) for k, v in tally.reasons.items() if v), key=lambda kv: -kv[1])
        ),
        "rejected_output": storage.join(output, REJECTED) if tally.rejected else None,
        # How often the model was built, and on how many Arrow batches it ran.
        **extra,
        "scored_at": utc_now(),
        "seconds": round(time.monotonic() - started, 1),
    }


def spark_scores(
    inp: InputFiles, spec: DatasetSpec, doc: bytes, version: str, staging: str
) -> tuple[Tally, dict[str, int]]:
    """The Spark engine: score the input into `staging` in one pass (the rule counts observed
    while the scores are written; the rejected rows, if any, in a second); the counts back."""
    from pyspark.sql import Observation

    from spark_jobs.scoring.score_arrow import Tally
    from spark_jobs.session import get_spark

    spark = get_spark(f"score-{spec.name}")
    # The ~40 row checks and the model in one generated method exceed HotSpot's 8,000-byte JIT
    # limit and would run interpreted; at this limit Spark splits the stage's code instead.
    spark.conf.set("spark.sql.codegen.hugeMethodLimit", "8000")
    observation = Observation("row checks")
    with readable(inp):
        raw = read_raw(spark, inp, spec, spec.features)
        aggregates, checks = rejection_aggregates(raw, spec)
        checked = check_rows(raw.observe(observation, *aggregates), spec)
        score_rows(checked, json.loads(doc), version).write.parquet(storage.spark_uri(staging))
        counts = observation.get
        tally = Tally(
            rows=int(counts["rows"]),
            rejected=int(counts["rejected"] or 0),
            reasons={what: int(counts[f"c{i}"] or 0) for i, (what, _, _) in enumerate(checks)},
        )
        if tally.rejected:
            rejected_rows(raw, spec).write.parquet(storage.spark_uri(storage.join(staging, REJECTED)))
    # The model is a Column expression, built once on the driver; no Python worker runs it.
    return tally, {"model_loads": 1, "arrow_batches": 0}


def rejection_aggregates(raw: Any, spec: DatasetSpec) -> tuple[list[Any], list[tuple[str, Any, Any]]]:
    """Aggregates of a raw read: rows (`rows`), rejected rows (`rejected`) and rows breaking each
    rule (`c<i>`, the i-th of the checks also returned)."""
    from functools import reduce

    from pyspark.sql import functions as F

    checks = row_checks(raw, spec)
    flags = [F.coalesce(cond, F.lit(False)) for _, cond, _ in checks]
    any_flag = reduce(lambda a, b: a | b, flags, F.lit(False))

    def count(cond: Any) -> Any:
        return F.sum(F.when(cond, 1).otherwise(0))

    aggregates = [F.count(F.lit(1)).alias("rows"), count(any_flag).alias("rejected")]
    return aggregates + [count(flag).alias(f"c{i}") for i, flag in enumerate(flags)], checks


def rejection_counts(raw: Any, spec: DatasetSpec) -> dict[str, int]:
    """Rows, rejected rows and the rows breaking each rule, in one pass over a raw read."""
    aggregates, checks = rejection_aggregates(raw, spec)
    row = raw.agg(*aggregates).first()
    return {"rows": int(row["rows"]), "rejected": int(row["rejected"] or 0)} | {
        what: int(row[f"c{i}"] or 0) for i, (what, _, _) in enumerate(checks)
    }


def check_rejected_ratio(summary: Mapping[str, Any], most: float) -> None:
    """The gate of a day's summary (one pod's, or the shards' together): more rejected rows than
    `most` fail it, naming the commonest reasons."""
    if summary["rejected_ratio"] > most:
        raise DataContractError(
            f"{summary['rows_rejected']} of {summary['rows_in']} row(s) in {summary['input']} "
            f"({summary['rejected_ratio']:.2%}) break the spec of {summary['model']} version "
            f"{summary['model_version']}, more than --max-rejected-ratio {most:.2%}; "
            f"nothing was written. Most common: {_top(summary['rejected_reasons'])}"
        )


def _top(reasons: dict[str, int], n: int = 5) -> str:
    return "; ".join(f"{what} ({count})" for what, count in list(reasons.items())[:n]) or "(none)"


def scores_base(root: str, model: str) -> str:
    return storage.join(storage.normalize(root), "scores", model)


@contextmanager
def claimed_partition(root: str, model: str, date: str, holder: str | None) -> Iterator[None]:
    """Hold the claim on one date's partition for the whole run: a second run for the same date
    fails at once, naming this one, instead of replacing its output under it."""
    lease = storage.join(scores_base(root, model), "_leases", f"ds={date}.json")
    with Lease(lease, holder_id(holder), f"the scores of {model} for {date}"):
        yield


@contextmanager
def staged_partition(root: str, model: str, date: str) -> Iterator[str]:
    """A fresh staging folder for one date's partition (the caller holds its claim), removed when
    the block ends (its content has been moved into place by then, or the block failed). What
    killed runs of any date nobody holds a claim on left behind goes first."""
    remove_leftovers(root, model, held=date)
    uri = storage.join(scores_base(root, model), "_staging", f"ds={date}-{secrets.token_hex(4)}")
    try:
        yield uri
    finally:
        storage.remove_tree(uri)


def remove_leftovers(root: str, model: str, held: str | None = None) -> list[str]:
    """Staging folders of killed runs (of the date whose claim this run holds, `held`, and of any
    date nobody claims), and (locally) partitions a killed replacement left aside in `_replaced/`:
    removed when the partition is in place, moved back when it is missing."""
    base = scores_base(root, model)
    gone = []
    fs, path = storage.filesystem(storage.join(base, "_staging"))
    for found in fs.ls(path, detail=False) if fs.exists(path) else []:
        date = found.rstrip("/").rsplit("/", 1)[-1].removeprefix("ds=").rsplit("-", 1)[0]
        if date == held or is_free(storage.join(base, "_leases", f"ds={date}.json")):
            fs.rm(found, recursive=True)
            gone.append(f"_staging/{found.rstrip('/').rsplit('/', 1)[-1]}")
    if storage.is_local(base):
        aside = os.path.join(storage.normalize(base), "_replaced")
        for old in sorted(glob.glob(os.path.join(aside, "ds=*"))):
            name = "-".join(os.path.basename(old).split("-", 3)[:3])  # ds=YYYY-MM-DD
            if name != f"ds={held}" and not is_free(storage.join(base, "_leases", f"{name}.json")):
                continue  # a live run of that date is replacing it right now
            partition = os.path.join(storage.normalize(base), name)
            if os.path.exists(partition):
                shutil.rmtree(old)
            else:
                os.rename(old, partition)
            gone.append(f"_replaced/{os.path.basename(old)}")
    return gone


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a ratio between 0 and 1, got {text}")
    return value


def _shard(text: str) -> dict[str, Any]:
    from spark_jobs.scoring.shards import parse_shard

    return parse_shard(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spark_jobs score",
        description=__doc__.split("\n")[0],
        epilog="Prints the summary as JSON. Exit codes: 3 bad input, 4 registry problem.",
    )
    storage_root_option(parser)
    parser.add_argument(
        "--model", required=True, type=name_argument, help="model (dataset) name in the registry"
    )
    parser.add_argument("--date", required=True, type=iso_date, help="the logical date to score, YYYY-MM-DD")
    parser.add_argument(
        "--input",
        type=argument("input"),
        help="the day's records (default: <root>/incoming/<model>/ds=<date>/)",
    )
    parser.add_argument(
        "--format", choices=("auto", "csv", "parquet"), default="auto", help="input format (default: by name)"
    )
    parser.add_argument(
        "--model-version", type=optional_version, help="model version to apply (default: the champion)"
    )
    parser.add_argument(
        "--max-rejected-ratio",
        type=_ratio,
        default=0.05,
        help="fail, writing nothing, when more rows than this break the spec (default: 0.05)",
    )
    parser.add_argument(
        "--engine",
        choices=("arrow", "spark"),
        default="arrow",
        help="arrow: stream the day through Arrow and numpy, no JVM (a pod); "
        "spark: the same checks and scores with Spark (an EMR cluster) (default: arrow)",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        help="score one shard of spark_jobs.scoring.shards.plan (JSON) into the run's shard folder; "
        "the commit publishes the day and applies --max-rejected-ratio",
    )
    parser.add_argument("--run-id", help="recorded in the summary (the Airflow run id)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def score() -> None:
        print(ScoreSummary(**run(args)).show())

    return run_cli(score)
