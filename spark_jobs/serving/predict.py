"""Spot predictions from a registered model: record checks against the dataset spec, then scoring.

Nothing on this path imports Spark, pandas, numpy or scikit-learn: the Lambda handler loads in a
fraction of a second and its package holds only pydantic, PyYAML and fsspec.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spark_jobs import storage
from spark_jobs.errors import InvalidInputError
from spark_jobs.registry.portable import Scorer
from spark_jobs.registry.store import PORTABLE, SPEC, Registry
from spark_jobs.spec import DatasetSpec

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_REPORTED_ERRORS = 20
# The most of a value an error message shows: a request may carry megabytes in one field.
MAX_SHOWN = 60
_JSON_TYPE = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
_INTEGER_LIMITS = {"integer": 2**31, "long": 2**63}


def json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPE.get(type(value), type(value).__name__)


def shown(value: Any) -> str:
    """A value as an error message shows it: its repr, cut to MAX_SHOWN characters."""
    text = repr(value) if not isinstance(value, dict | list) else f"an {json_type(value)}"
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text):,} characters)"


def check_value(spec: DatasetSpec, name: str, value: Any) -> str | None:
    """What is wrong with one feature value, or None if the model can take it."""
    column = spec.columns[name]
    if value is None:
        if spec.max_null_ratio(name) > 0:
            return None
        return "is null, and the model was trained on data with no nulls in this column"
    if column.type == "string":
        # Unknown categories are fine (they score as Spark scores them); other types are not.
        return None if isinstance(value, str) else f"expected a string, got {json_type(value)} {shown(value)}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {json_type(value)} {shown(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {shown(value)}"
    if column.type in _INTEGER_LIMITS:
        if isinstance(value, float) and not value.is_integer():
            return f"expected a whole number, got {shown(value)}"
        limit = _INTEGER_LIMITS[column.type]
        if not -limit <= value < limit:
            return f"{shown(value)} is outside the range of a {'32' if limit == 2**31 else '64'}-bit integer"
    elif isinstance(value, int) and abs(value) > sys.float_info.max:
        return f"{shown(value)} is too large for a number"
    if column.min is not None and value < column.min:
        return f"{shown(value)} is below the minimum {column.min:g}"
    if column.max is not None and value > column.max:
        return f"{shown(value)} is above the maximum {column.max:g}"
    return None


def check_records(spec: DatasetSpec, records: Any) -> None:
    """Raise InvalidInputError naming every bad record and field (up to a limit); fields that are
    not features (an id, the target) are allowed and ignored."""
    if not isinstance(records, list) or not records:
        got = "an empty array" if records == [] else json_type(records)
        raise InvalidInputError(f"'records' must be a non-empty array of objects, got {got}")
    problems: list[str] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(f"record {i}: expected an object, got {json_type(record)}")
            continue
        for name in spec.features:
            if name not in record:
                problems.append(f"record {i}: missing field {name!r}")
            elif (problem := check_value(spec, name, record[name])) is not None:
                problems.append(f"record {i}: {name}: {problem}")
    if problems:
        _refuse(problems)


def _refuse(problems: list[str]) -> None:
    """InvalidInputError naming the first problems (a bounded message) and how many there are."""
    more = len(problems) - MAX_REPORTED_ERRORS
    raise InvalidInputError(
        f"{len(problems)} problem(s) in the records: {'; '.join(problems[:MAX_REPORTED_ERRORS])}"
        + (f"; and {more} more" if more > 0 else "")
    )


def training_ranges(spec: DatasetSpec, scorer: Scorer) -> dict[str, tuple[float, float]]:
    """Per numeric feature, the values spot predictions take without a word: the range seen in
    training, widened by the spec's range_margin times its span on each side."""
    margin = spec.serving.range_margin
    ranges = {}
    for col in scorer.doc["numeric"]:
        if "observed" in col:
            low, high = col["observed"]
            span = high - low
            ranges[col["name"]] = (low - margin * span, high + margin * span)
    return ranges


def outside_training(record: dict[str, Any], ranges: dict[str, tuple[float, float]]) -> list[str]:
    return [
        f"{name}: {shown(record[name])} is far outside the values seen in training "
        f"({low:g} to {high:g} with the margin)"
        for name, (low, high) in ranges.items()
        if isinstance(record.get(name), int | float) and not low <= record[name] <= high
    ]


@dataclass(frozen=True)
class Predictor:
    """One model version, loaded once (checksums verified) and used for many requests."""

    model: str
    version: str
    spec: DatasetSpec
    scorer: Scorer

    @classmethod
    def load(cls, registry: Registry, version: str | None = None) -> Predictor:
        """A version (the champion by default) with the spec it was trained on."""
        version = registry.champion_version() if version is None else version
        manifest = registry.manifest(version)
        spec = DatasetSpec.model_validate(json.loads(registry.read_verified(version, SPEC, manifest)))
        scorer = Scorer(json.loads(registry.read_verified(version, PORTABLE, manifest)))
        return cls(model=registry.model, version=version, spec=spec, scorer=scorer)

    def predict(self, records: Any) -> dict[str, Any]:
        """Check every record, then score them; a value far outside the training range is flagged
        on its prediction (`warnings`) or refused, as the spec's serving policy says."""
        check_records(self.spec, records)
        ranges = training_ranges(self.spec, self.scorer)
        refuse = self.spec.serving.outside_training_range == "refuse"
        far = [(i, outside_training(record, ranges)) for i, record in enumerate(records)]
        if refuse and any(found for _, found in far):
            _refuse([f"record {i}: {problem}" for i, found in far for problem in found])
        predictions = []
        for (i, warnings), record in zip(far, records, strict=True):
            p = self.scorer.probability(record)
            if not math.isfinite(p):
                raise InvalidInputError(f"record {i}: its values are too extreme to score")
            prediction: dict[str, Any] = {"label": self.scorer.label(p), "probability": p}
            predictions.append(prediction | ({"warnings": warnings} if warnings else {}))
        return {"model": self.model, "model_version": self.version, "count": len(predictions)} | {
            "predictions": predictions
        }


def parse_records_file(data: bytes, uri: str) -> list[Any]:
    """Records from a JSON array or JSON Lines file (UTF-8)."""
    try:
        text = data.decode("utf-8")
        if text.lstrip().startswith("["):
            records = json.loads(text)
            return records if isinstance(records, list) else [records]
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{uri} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise InvalidInputError(f"{uri} nests JSON too deeply") from None
    except ValueError as exc:
        # json's message names the line and column, never the content.
        raise InvalidInputError(f"{uri} is neither a JSON array nor JSON Lines: {exc}") from None


def to_json_lines(rows: Sequence[Any]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def read_object(uri: str) -> bytes:
    """Read a storage URI; S3 through boto3 (in every Lambda runtime), anything else through fsspec."""
    if not uri.startswith("s3://"):
        return storage.read_bytes(uri)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    client = _s3()
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        raise FileNotFoundError(uri) from None


def write_object(uri: str, data: bytes) -> None:
    if not uri.startswith("s3://"):
        storage.write_bytes(uri, data)
        return
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    _s3().put_object(Bucket=bucket, Key=key, Body=data)


_S3_CLIENT: S3Client | None = None


def _s3() -> S3Client:
    global _S3_CLIENT
    if _S3_CLIENT is None:
        import boto3

        _S3_CLIENT = boto3.client("s3")
    return _S3_CLIENT


def example_record(spec: DatasetSpec, scorer: Scorer) -> dict[str, Any]:
    """A valid record built from the model itself: each numeric feature at its training mean
    (whole and within range where the spec says), each categorical at its first category."""
    record: dict[str, Any] = {}
    for col in scorer.doc["numeric"]:
        column = spec.columns[col["name"]]
        value: float = col["mean"]
        if column.min is not None:
            value = max(value, column.min)
        if column.max is not None:
            value = min(value, column.max)
        record[col["name"]] = round(value) if column.type in ("integer", "long") else value
    for col in scorer.doc["categorical"]:
        record[col["name"]] = col["categories"][0] if col["categories"] else ""
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m spark_jobs serving smoke --storage-root URI --model NAME --version V` prints a
    request for that version and the answer it must give: a release checks a new Lambda
    version with it before moving the alias."""
    import argparse

    from spark_jobs.errors import run_cli
    from spark_jobs.interface import SmokeCheck
    from spark_jobs.locations import argument, name_argument, version_argument

    parser = argparse.ArgumentParser(prog="python -m spark_jobs serving", description=main.__doc__)
    parser.add_argument("command", choices=["smoke"])
    parser.add_argument("--storage-root", required=True, type=argument("storage root"))
    parser.add_argument("--model", required=True, type=name_argument)
    parser.add_argument("--version", required=True, type=version_argument)
    args = parser.parse_args(argv)

    def smoke() -> None:
        predictor = Predictor.load(Registry(args.storage_root, args.model), args.version)
        event = {"records": [example_record(predictor.spec, predictor.scorer)]}
        print(SmokeCheck(event=event, expected=predictor.predict(event["records"])).show())

    return run_cli(smoke)
