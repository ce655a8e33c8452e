"""A day split into shards that pods score side by side, and their commit as one partition.

- `plan`: the day's files, whole or (large Parquet files) by row groups, in their order, grouped
  into shards of about `target_rows` rows each, at most `max_shards`.
- `python -m spark_jobs score --shard JSON`: one pod scores one shard into
  `<root>/scores/<model>/_shards/ds=<date>/<run>/shard-<i>/`, its `_summary.json` written last.
- `commit`: under the partition's claim, checks every shard's summary (there, of the planned
  input and model version, rows in = scored + rejected), applies the day's rejected-ratio gate,
  and moves the shards' parts into place as one partition with one summary; the partition is
  never visible half-written, and a failing day commits nothing.

Nothing here imports pyspark: the plan and the commit run on the Airflow worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import posixpath
import re
import time
from typing import Any

import fsspec

from spark_jobs import storage
from spark_jobs.data.contract import InputFiles
from spark_jobs.data.partitions import MARKER, output_uri
from spark_jobs.errors import DataContractError, IncompleteShardsError
from spark_jobs.scoring.score import REJECTED, SUMMARY

log = logging.getLogger("spark_jobs.scoring.shards")

_HEAD_BYTES = 1 << 16  # what a CSV file's rows are estimated from


# -- the plan -------------------------------------------------------------------------------------


def units(inp: InputFiles, target_rows: int) -> list[dict[str, Any]]:
    """The day in pieces a shard may take: {file (its index in `inp.files`), row_groups (None: the
    whole file), rows}.

    A Parquet file larger than `target_rows` with several row groups is split by row group (its
    footer says how many rows each holds); other files are whole. A CSV file's rows are estimated
    from its size and the lines of its first 64 KB."""
    pieces: list[dict[str, Any]] = []
    for index, uri in enumerate(inp.files):
        if inp.format == "parquet":
            import pyarrow.parquet as pq

            with fsspec.open(uri, "rb") as fh:
                meta = pq.ParquetFile(fh).metadata
            groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            if meta.num_rows > target_rows and len(groups) > 1:
                pieces += [{"file": index, "row_groups": [i], "rows": n} for i, n in enumerate(groups)]
            else:
                pieces.append({"file": index, "row_groups": None, "rows": meta.num_rows})
        else:
            pieces.append({"file": index, "row_groups": None, "rows": _estimated_rows(uri)})
    return pieces


def _estimated_rows(uri: str) -> int:
    fs, path = storage.filesystem(uri)
    size = int(fs.size(path))
    with fsspec.open(uri, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    lines = head.count(b"\n")
    if uri.endswith(".gz") or not lines:
        return max(1, size // 100)  # compressed or one line: about 100 bytes a row
    return max(1, int(round(size / (len(head) / lines))))


def plan(inp: InputFiles, target_rows: int, max_shards: int) -> list[dict[str, Any]]:
    """Shards of the day, each {index, count, parts: [{file, row_groups}], rows (estimated)}:
    contiguous runs of `units` with about equal rows, as many as `target_rows` asks for, at most
    `max_shards` and never more than there are pieces."""
    if target_rows < 1 or max_shards < 1:
        raise ValueError("target rows per shard and the number of shards must be at least 1")
    pieces = units(inp, target_rows)
    total = sum(p["rows"] for p in pieces)
    count = max(1, min(max_shards, len(pieces), math.ceil(total / target_rows)))
    groups: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    done = 0
    for piece in pieces:
        # The shard whose share of the rows this piece's middle falls in.
        at = min(count - 1, int((done + piece["rows"] / 2) * count / max(total, 1)))
        groups[at].append(piece)
        done += piece["rows"]
    groups = [g for g in groups if g]
    return [
        {
            "index": i,
            "count": len(groups),
            "parts": [{"file": p["file"], "row_groups": p["row_groups"]} for p in group],
            "rows": sum(p["rows"] for p in group),
        }
        for i, group in enumerate(groups)
    ]


def parse_shard(text: str) -> dict[str, Any]:
    """An argparse type: a shard of `plan` as JSON."""
    import argparse

    try:
        shard = json.loads(text)
        assert isinstance(shard, dict)
        index, count, parts = int(shard["index"]), int(shard["count"]), shard["parts"]
        assert 0 <= index < count and isinstance(parts, list) and parts
        for part in parts:
            assert isinstance(part["file"], int) and part["file"] >= 0
            groups = part.get("row_groups")
            assert groups is None or all(isinstance(g, int) and g >= 0 for g in groups)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise argparse.ArgumentTypeError(
            'expected a shard as JSON: {"index": i, "count": n, '
            '"parts": [{"file": index, "row_groups": [..] or null}]}'
        ) from None
    return {"index": index, "count": count, "parts": parts}


# -- where shards are written ----------------------------------------------------------------------


def run_key(run_id: str | None) -> str:
    """A run id as a folder name: readable where it can be, unique always."""
    text = run_id or "manual"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def shards_uri(root: str, model: str, date: str, run_id: str | None) -> str:
    base = storage.join(storage.normalize(root), "scores", model, "_shards", f"ds={date}")
    return storage.join(base, run_key(run_id))


def shard_uri(root: str, model: str, date: str, run_id: str | None, index: int) -> str:
    return storage.join(shards_uri(root, model, date, run_id), f"shard-{index:05d}")


# -- the commit -----------------------------------------------------------------------------------


def commit(
    root: str,
    model: str,
    date: str,
    run_id: str,
    count: int,
    fingerprint: str,
    max_rejected_ratio: float,
) -> dict[str, Any]:
    """Publish the `count` shards a run scored as the day's partition, whole; its summary back."""
    from spark_jobs.registry.store import utc_now
    from spark_jobs.scoring.score import check_rejected_ratio, claimed_partition, staged_partition

    started = time.monotonic()
    where = shards_uri(root, model, date, run_id)
    with claimed_partition(root, model, date, run_id):
        published = _published(root, model, date, run_id, fingerprint)
        if published is not None and not storage.exists(storage.join(where, f"shard-{0:05d}", SUMMARY)):
            log.info("%s for %s was committed by this run already", model, date)
            return published  # a cleared commit task, run again: nothing left to do
        summaries = [_shard_summary(where, i, count, fingerprint) for i in range(count)]
        versions = {s["model_version"] for s in summaries}
        if len(versions) != 1:
            raise IncompleteShardsError(
                f"the shards of {model} for {date} were scored by different versions: {sorted(versions)}"
            )
        rows_in = sum(s["rows_in"] for s in summaries)
        rejected = sum(s["rows_rejected"] for s in summaries)
        reasons: dict[str, int] = {}
        for s in summaries:
            for what, n in s["rejected_reasons"].items():
                reasons[what] = reasons.get(what, 0) + n
        reasons = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
        ratio = rejected / rows_in if rows_in else 0.0
        first = summaries[0]
        day = {key: first[key] for key in ("model", "model_version", "input")}
        day |= {
            "rows_in": rows_in,
            "rows_rejected": rejected,
            "rejected_ratio": ratio,
            "rejected_reasons": reasons,
        }
        try:
            check_rejected_ratio(day, max_rejected_ratio)
        except DataContractError:
            storage.remove_tree(where)
            raise
        final = output_uri(root, model, date)
        with staged_partition(root, model, date) as staging:
            for i, shard in enumerate(summaries):
                # Copied, not moved: the shards stay whole until the day is in place, so a
                # commit that fails half-way (and its retry) finds every one of them again.
                _copy_parts(storage.join(where, f"shard-{i:05d}"), shard["parts"], staging)
            summary = {
                key: first[key]
                for key in (
                    "model",
                    "model_version",
                    "date",
                    "engine",
                    "input",
                    "input_format",
                    "input_fingerprint",
                )
            } | {
                "run_id": run_id,
                "output": final,
                "rows_in": rows_in,
                "rows_scored": rows_in - rejected,
                "rows_rejected": rejected,
                "rejected_ratio": round(ratio, 6),
                "rejected_reasons": reasons,
                "rejected_output": storage.join(final, REJECTED) if rejected else None,
                "shards": count,
                "shard_seconds": [s["seconds"] for s in summaries],
                "model_loads": sum(s["model_loads"] for s in summaries),
                "arrow_batches": sum(s["arrow_batches"] for s in summaries),
                "scored_at": utc_now(),
                "seconds": round(time.monotonic() - started, 1),
            }
            storage.write_bytes(storage.join(staging, MARKER), b"")
            storage.write_bytes(storage.join(staging, SUMMARY), storage.dump_json(summary))
            storage.replace_tree(staging, final, last=MARKER)
        storage.remove_tree(where)
    log.info(
        "committed %d shard(s) of %s for %s: %d row(s), %d rejected", count, model, date, rows_in, rejected
    )
    return summary


def _shard_summary(where: str, index: int, count: int, fingerprint: str) -> dict[str, Any]:
    uri = storage.join(where, f"shard-{index:05d}", SUMMARY)
    if not storage.exists(uri):
        raise IncompleteShardsError(
            f"shard {index} of {count} has no summary at {uri}: it was not scored (or not to the end)"
        )
    summary: dict[str, Any] = json.loads(storage.read_bytes(uri))
    problems = []
    if summary.get("shard") != {"index": index, "count": count}:
        problems.append(f"it is shard {summary.get('shard')}, not {index} of {count}")
    if summary.get("input_fingerprint") != fingerprint:
        problems.append("its input is not the planned one (the day's files changed after the plan)")
    if summary.get("rows_in") != summary.get("rows_scored", 0) + summary.get("rows_rejected", 0):
        problems.append("its rows in are not its rows scored plus rejected")
    there = storage.list_files(storage.join(where, f"shard-{index:05d}"))
    missing = [rel for rel in summary.get("parts", []) if rel not in there]
    if missing:
        problems.append(f"{len(missing)} of its part files are gone, e.g. {missing[0]}")
    if problems:
        raise IncompleteShardsError(f"shard {index} of {count} ({uri}): " + "; ".join(problems))
    return summary


def _copy_parts(shard: str, parts: list[str], staging: str) -> None:
    """The part files a shard's summary lists (scored, and rejected) into the staging folder:
    hard links locally, object copies on a store."""
    fs, _ = storage.filesystem(shard)
    for rel in parts:
        source, target = (storage.filesystem(storage.join(base, rel))[1] for base in (shard, staging))
        if storage.is_local(shard):  # an object store has no folders (s3fs would create the bucket)
            os.makedirs(posixpath.dirname(target), exist_ok=True)
            os.link(source, target)
        else:
            fs.copy(source, target)


def _published(root: str, model: str, date: str, run_id: str, fingerprint: str) -> dict[str, Any] | None:
    """The day's published summary, if this run committed this input already."""
    uri = storage.join(output_uri(root, model, date), SUMMARY)
    if not storage.exists(uri):
        return None
    summary: dict[str, Any] = json.loads(storage.read_bytes(uri))
    mine = summary.get("run_id") == run_id and summary.get("input_fingerprint") == fingerprint
    return summary if mine else None


# -- the command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m spark_jobs shards plan|commit ...`: prints the plan, or the committed summary, as JSON."""
    import argparse

    from spark_jobs.data.partitions import input_uri, iso_date
    from spark_jobs.errors import run_cli
    from spark_jobs.interface import Answer, ScoreSummary, ShardPlan
    from spark_jobs.locations import argument, name_argument, optional_version

    parser = argparse.ArgumentParser(prog="python -m spark_jobs shards", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "commit"):
        sub = commands.add_parser(name)
        sub.add_argument("--storage-root", required=True, type=argument("storage root"))
        sub.add_argument("--model", required=True, type=name_argument)
        sub.add_argument("--date", required=True, type=iso_date)
    plan_args = commands.choices["plan"]
    plan_args.add_argument("--input", type=argument("input"), help="default: the date's incoming partition")
    plan_args.add_argument("--model-version", type=optional_version, help="default: the champion")
    plan_args.add_argument("--target-rows", type=int, required=True)
    plan_args.add_argument("--max-shards", type=int, required=True)
    commit_args = commands.choices["commit"]
    commit_args.add_argument("--run-id", required=True)
    commit_args.add_argument("--shards", type=int, required=True, help="how many the plan made")
    commit_args.add_argument("--fingerprint", required=True, help="the planned input's")
    commit_args.add_argument("--max-rejected-ratio", type=float, required=True)
    args = parser.parse_args(argv)

    def run() -> None:
        if args.command == "commit":
            answer: Answer = ScoreSummary(**commit(
                args.storage_root, args.model, args.date, args.run_id,
                args.shards, args.fingerprint, args.max_rejected_ratio,
            ))  # fmt: skip
        else:
            from spark_jobs.data.contract import inspect_input
            from spark_jobs.registry.store import SPEC, Registry
            from spark_jobs.spec import DatasetSpec

            registry = Registry(args.storage_root, args.model)
            version = args.model_version or registry.champion_version()
            spec = DatasetSpec.model_validate(json.loads(registry.read_verified(version, SPEC)))
            source = args.input or input_uri(args.storage_root, args.model, args.date)
            inp = inspect_input(source, spec, columns=spec.features, fmt="auto")
            try:
                shards = plan(inp, args.target_rows, args.max_shards)
            except ValueError as exc:
                raise DataContractError(str(exc)) from None
            answer = ShardPlan.model_validate(
                {"model_version": version, "fingerprint": inp.fingerprint, "shards": shards}
            )
        print(answer.show())

    return run_cli(run)
