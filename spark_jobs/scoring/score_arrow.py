"""Batch scoring without a JVM: a day's files read, checked, scored and written as a stream of
Arrow record batches, with numpy doing the arithmetic (the portable `Scorer`).

The engine of the scoring pod (spark_jobs.scoring.score --engine arrow). It checks every row by
spark_jobs.data.row_rules, as the Spark engine does, and so gives the same reasons in the same words,
scores with the same model and writes the same layout: one `part-*.parquet`
and one `_rejected/part-*.parquet` per input file, so files of different schemas never meet.
Memory is bounded by one batch, whatever the size of the day. Nothing here imports pyspark.
"""

from __future__ import annotations

import csv
import decimal
import io
import logging
import posixpath
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from spark_jobs import storage
from spark_jobs.data.contract import InputFiles
from spark_jobs.data.partitions import MARKER
from spark_jobs.data.row_rules import (
    ABOVE,
    BELOW,
    CORRUPT,
    DECIMAL,
    EXACT_IN_DOUBLE,
    FLOATING,
    INEXACT,
    INTEGER_RANGES,
    INTEGRAL,
    MALFORMED,
    MISSING,
    NOT_FINITE,
    NOT_NUMBER,
    NOT_WHOLE,
    OTHER,
    OUT_OF_RANGE,
    TEXT,
    Rule,
    row_rules,
    value_rules,
)
from spark_jobs.data.spark_values import (
    JAVA_SPACE,
    sample,
    simple_string,
    text_to_double,
    text_to_integer,
)
from spark_jobs.errors import DataContractError
from spark_jobs.registry.portable import Scorer
from spark_jobs.scoring.score import REASON
from spark_jobs.spec import DatasetSpec

log = logging.getLogger("spark_jobs.scoring.score_arrow")

BATCH_ROWS = 65_536
# How often a long file's scoring says how far it is (a pod's log is what its task log shows).
PROGRESS_SECONDS = 30.0
# (what is wrong, a numpy mask of the rows breaking it, the value row i shows in the message)
Check = tuple[str, np.ndarray[Any, Any], Callable[[int], str] | None]
ARROW_TYPES = {"integer": pa.int32(), "long": pa.int64(), "double": pa.float64(), "string": pa.string()}


@dataclass
class Tally:
    """What one run read and wrote: rows, rejected rows, rows breaking each rule, batches, and
    the part files written (relative to the output folder)."""

    rows: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    parts: list[str] = field(default_factory=list)

    def add(self, what: str, count: int) -> None:
        self.reasons[what] = self.reasons.get(what, 0) + count


Rules = list[tuple[Rule, np.ndarray[Any, Any]]]


# -- checks (a batch in, masks and messages out, no I/O) ----------------------------------------


@dataclass(frozen=True)
class Typed:
    """A raw column read as its spec type (null where the raw value is null or breaks a rule) and
    the rules of row_rules.value_rules it can break, each with a numpy mask of the rows breaking it."""

    value: pa.Array
    rules: Rules

    def mask(self, test: str) -> np.ndarray[Any, Any]:
        return next(mask for rule, mask in self.rules if rule.test == test)


def arrow_kind(data_type: pa.DataType) -> str:
    """How an Arrow column holds its values, in row_rules' words (uint64 as Spark reads it)."""
    if pa.types.is_dictionary(data_type):
        return arrow_kind(data_type.value_type)
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return TEXT
    if pa.types.is_floating(data_type):
        return FLOATING
    if pa.types.is_decimal(data_type) or pa.types.is_uint64(data_type):  # Spark: decimal(20,0)
        return DECIMAL
    return INTEGRAL if pa.types.is_integer(data_type) else OTHER


def typed_column(array: pa.Array, type_name: str) -> Typed:
    """`contract.typed_column` for one Arrow column: the rules of row_rules.value_rules, each
    tested by the same meaning."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind, target = arrow_kind(array.type), ARROW_TYPES[type_name]
    rules = value_rules(kind, simple_string(array.type), type_name)
    present = _mask(array.is_valid())
    if type_name == "string" and kind == TEXT:
        return Typed(array.cast(pa.string()), [])
    if type_name == "string" or kind == OTHER:
        return Typed(pa.nulls(len(array), target), [(rule, present) for rule in rules])
    if kind == TEXT:
        parse = _double_from_text if type_name == "double" else partial(text_to_integer, type_name=type_name)
        return _by_value(array, rules, parse, target)
    if kind == DECIMAL:
        return _by_value(array, rules, lambda d: _from_decimal(decimal.Decimal(d), type_name), target)
    x: np.ndarray[Any, Any] = pc.fill_null(array, 0).to_numpy(zero_copy_only=False)
    finite: np.ndarray[Any, Any] = np.isfinite(x) if kind == FLOATING else np.ones(len(x), bool)

    def out_of_range() -> np.ndarray[Any, Any]:  # asked for only when the spec's type is an integer
        low, high, _ = INTEGER_RANGES[type_name]
        if kind == INTEGRAL:
            # An unsigned column is never below, and comparing it with a negative bound fails.
            below = (x < low) if pa.types.is_signed_integer(array.type) else np.zeros(len(x), bool)
            return below | (x > high)
        with np.errstate(invalid="ignore"):
            return finite & ((x < float(low)) | (x >= float(high) + 1.0))

    def inexact() -> np.ndarray[Any, Any]:
        signed = pa.types.is_signed_integer(array.type)
        return (x > EXACT_IN_DOUBLE) | ((x < -EXACT_IN_DOUBLE) if signed else False)

    def not_whole() -> np.ndarray[Any, Any]:
        with np.errstate(invalid="ignore"):
            whole: np.ndarray[Any, Any] = x == np.floor(x)
        return finite & ~whole

    tests: dict[str, Callable[[], np.ndarray[Any, Any]]] = {
        NOT_FINITE: lambda: ~finite,
        INEXACT: inexact,
        NOT_WHOLE: not_whole,
        OUT_OF_RANGE: out_of_range,
    }
    masks = [(rule, present & tests[rule.test]()) for rule in rules]
    ok = present & ~_any([m for _, m in masks], len(x))
    values = x.astype("float64") if type_name == "double" else np.where(ok, x, 0).astype("int64")
    return Typed(pa.array(values, mask=~ok).cast(target), masks)


def _double_from_text(text: str) -> tuple[float | None, str | None]:
    value = text_to_double(text)
    if value is None:
        return None, NOT_NUMBER
    return (value, None) if np.isfinite(value) else (None, NOT_FINITE)


def _from_decimal(value: Any, type_name: str) -> tuple[Any, str | tuple[str, ...] | None]:
    """Both of Spark's rules, each judged on its own (3000000000.5 breaks both)."""
    if type_name == "double":
        return float(value), None
    low, high, _ = INTEGER_RANGES[type_name]
    broken = []
    if value != value.to_integral_value(rounding="ROUND_FLOOR"):
        broken.append(NOT_WHOLE)
    # Spark compares a decimal with the bounds as doubles.
    if float(value) < float(low) or float(value) >= float(high) + 1.0:
        broken.append(OUT_OF_RANGE)
    return (None, tuple(broken)) if broken else (int(value), None)


def _by_value(
    array: pa.Array,
    rules: list[Rule],
    parse: Callable[[Any], tuple[Any, str | tuple[str, ...] | None]],
    target: Any,
) -> Typed:
    """A column typed value by value in Python, once per distinct value (a day has few); `parse`
    gives the typed value, or None and the test (or tests) of row_rules the value fails."""
    encoded = pc.dictionary_encode(array)
    parsed = [parse(v) for v in encoded.dictionary.to_pylist()]
    present = _mask(array.is_valid())
    index = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
    typed = pa.array([value for value, _ in parsed], target).take(encoded.indices)
    masks = []
    for rule in rules:
        # One more entry for a null's index (0, filled): masked by `present`, and never empty.
        broken = np.array(
            [rule.test == why or (isinstance(why, tuple) and rule.test in why) for _, why in parsed] + [False]
        )
        masks.append((rule, present & broken[index]))
    return Typed(typed, masks)


def row_checks(batch: pa.RecordBatch, spec: DatasetSpec) -> tuple[dict[str, Typed], list[Check]]:
    """The typed features of a raw batch, and (what is wrong, mask, the value row i shows) for every
    rule of row_rules a row can break, in their order."""
    names = batch.schema.names
    kinds = {
        name: (arrow_kind(batch.column(name).type), simple_string(batch.column(name).type))
        for name in spec.features
    }
    typed = {name: typed_column(batch.column(name), spec.columns[name].type) for name in spec.features}
    checks: list[Check] = []
    for rule in row_rules(spec, kinds, malformed=CORRUPT in names):
        raw = batch.column(rule.column)
        if rule.test == MALFORMED:
            mask = _mask(raw.is_valid())
        elif rule.test == MISSING:
            mask = ~_mask(raw.is_valid())
        elif rule.test in (BELOW, ABOVE):
            value = typed[rule.column].value
            numbers = pc.fill_null(value, 0).to_numpy(zero_copy_only=False)
            beyond = numbers < rule.bound if rule.test == BELOW else numbers > rule.bound
            mask = _mask(value.is_valid()) & beyond
        else:
            mask = typed[rule.column].mask(rule.test)
        shown = _raw_text(raw) if rule.shows_value else _constant(rule.detail) if rule.detail else None
        checks.append((rule.what, mask, shown))
    return typed, checks


def _constant(text: str) -> Callable[[int], str]:
    return lambda i: text


def _raw_text(raw: pa.Array) -> Callable[[int], str]:
    """Row i's value as read, as Spark prints it, cut to a sample."""
    return lambda i: sample(raw[i].as_py(), raw.type)


def reasons(size: int, checks: list[Check]) -> tuple[np.ndarray[Any, Any], pa.Array]:
    """Which rows are rejected, and why (every rule each breaks, joined by "; "; null for the rest)."""
    rejected = _any([mask for _, mask, _ in checks], size)
    why: list[str | None] = [None] * size
    for i in np.flatnonzero(rejected):
        why[i] = "; ".join(
            what if shown is None else f"{what}: {shown(i)}" for what, mask, shown in checks if mask[i]
        )
    return rejected, pa.array(why, pa.string())


def score_batch(
    batch: pa.RecordBatch, spec: DatasetSpec, scorer: Scorer, version: str, tally: Tally
) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """(the rows that pass, typed and scored; the rows that break the spec, as read, with why)."""
    typed, checks = row_checks(batch, spec)
    rejected, why = reasons(batch.num_rows, checks)
    tally.rows += batch.num_rows
    tally.rejected += int(rejected.sum())
    tally.batches += batch.num_rows > 0  # not the empty batch that carries a file's schema
    for what, mask, _ in checks:
        tally.add(what, int(mask.sum()))
    keep = pa.array(~rejected)
    features = {name: typed[name].value.filter(keep) for name in spec.features}
    probability = scorer.arrow_probabilities(features)
    passthrough = [n for n in batch.schema.names if n not in spec.features and n != CORRUPT]
    scored = pa.RecordBatch.from_arrays(
        [batch.column(n).filter(keep) for n in passthrough]
        + list(features.values())
        + [
            pa.array(probability, pa.float64()),
            pa.array(scorer.labels(probability), pa.string()),
            pa.array(np.full(len(probability), version, object), pa.string()),
        ],
        names=[*passthrough, *spec.features, "probability", "prediction", "model_version"],
    )
    bad = batch.filter(pa.array(rejected)).append_column(REASON, why.filter(pa.array(rejected)))
    return scored, bad


def _mask(values: Any) -> np.ndarray[Any, Any]:
    return np.asarray(values.to_numpy(zero_copy_only=False), bool)


def _any(masks: list[np.ndarray[Any, Any]], size: int) -> np.ndarray[Any, Any]:
    out = np.zeros(size, bool)
    for mask in masks:
        out |= mask
    return out


# -- reading ------------------------------------------------------------------------------------


def raw_batches(
    inp: InputFiles, uri: str, spec: DatasetSpec, row_groups: list[int] | None = None
) -> Iterator[pa.RecordBatch]:
    """One input file as raw batches named as the spec (contract.read_raw without Spark): CSV
    values all text, with the corrupt-record column set on rows that do not split into the
    header's fields; Parquet values with their own types."""
    names = {spec.source(name): name for name in spec.columns}
    with _readable(inp, uri, spec.csv.encoding):
        batches = (
            _parquet_batches(inp, uri, spec, row_groups)
            if inp.format == "parquet"
            else _csv_batches(inp, uri, spec)
        )
        for batch in batches:
            yield batch.rename_columns([names.get(n, n) for n in batch.schema.names])


def _parquet_batches(
    inp: InputFiles, uri: str, spec: DatasetSpec, row_groups: list[int] | None
) -> Iterator[pa.RecordBatch]:
    with fsspec.open(uri, "rb") as fh:
        source = pq.ParquetFile(fh)
        schema = source.schema_arrow
        missing = [spec.source(c) for c in spec.features if spec.source(c) not in schema.names]
        if missing:
            raise DataContractError(
                f"input {inp.uri} is missing column(s) {', '.join(repr(c) for c in missing)} "
                f"required by spec {spec.name!r}"
            )
        empty = True
        if row_groups is not None and any(g >= source.num_row_groups for g in row_groups):
            raise DataContractError(
                f"input {inp.uri}: {posixpath.basename(uri)} has {source.num_row_groups} row group(s), "
                f"not the {row_groups} planned"
            )
        for batch in source.iter_batches(batch_size=BATCH_ROWS, row_groups=row_groups):
            empty = False
            yield batch
        if empty:
            yield pa.RecordBatch.from_pylist([], schema=schema)


def _csv_batches(inp: InputFiles, uri: str, spec: DatasetSpec) -> Iterator[pa.RecordBatch]:
    header = list(inp.header or ())
    schema = pa.schema([(n, pa.string()) for n in [*header, CORRUPT]])
    malformed: list[str] = []

    def skip(row: Any) -> str:
        if row.text.strip(JAVA_SPACE):  # Spark drops a line that is blank once trimmed
            malformed.append(row.text)
        return "skip"

    encoding = spec.csv.encoding.lower().replace("_", "-")
    read = pa_csv.ReadOptions(
        encoding="utf8" if encoding in ("utf-8", "utf8", "utf-8-sig", "utf8-sig") else spec.csv.encoding,
        block_size=8 << 20,
    )
    parse = pa_csv.ParseOptions(
        delimiter=spec.csv.delimiter,
        quote_char=spec.csv.quote,
        double_quote=True,
        # Parsed as quoted (a value may hold a line break) so that a quote left open is found
        # below and refused: Spark reads line by line, and Arrow would otherwise lose the rows
        # after it (or lose sync with its own chunks).
        newlines_in_values=True,
        invalid_row_handler=skip,
    )
    # Every value as text, and an empty field as null (Spark's nullValue), quoted or not.
    convert = pa_csv.ConvertOptions(
        column_types={n: pa.string() for n in header}, strings_can_be_null=True, null_values=[""]
    )
    nothing = pa.nulls(0, pa.string())
    with fsspec.open(uri, "rb", compression="infer") as fh:
        try:
            reader = pa_csv.open_csv(fh, read_options=read, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" not in str(exc):
                raise
            # A file with no line at all (not the first: inspect_input refuses that): no rows, as in Spark.
            yield pa.RecordBatch.from_arrays([nothing] * len(schema), schema=schema)
            return
        # Spark compares each file's header with the first's by name, ignoring case.
        if [n.lower() for n in reader.schema.names] != [n.lower() for n in header]:
            raise DataContractError(
                f"input {inp.uri} cannot be read as csv: the header of {posixpath.basename(uri)} "
                f"differs from that of {posixpath.basename(inp.files[0])}"
            )
        for batch in reader:
            spans = [n for n, col in zip(header, batch.columns, strict=True) if _has_line_break(col)]
            if spans:
                raise DataContractError(
                    f"input {inp.uri}: {posixpath.basename(uri)} has a quoted value of column {spans[0]!r} "
                    "that spans lines (a quote left open?); CSV is read line by line: fix its quoting"
                )
            corrupt = pa.nulls(batch.num_rows, pa.string())
            yield pa.RecordBatch.from_arrays([*batch.columns, corrupt], schema=schema)
            if malformed:
                yield _malformed_batch(malformed, header, spec, schema)
                malformed.clear()
        if malformed:
            yield _malformed_batch(malformed, header, spec, schema)
        yield pa.RecordBatch.from_arrays([nothing] * len(schema), schema=schema)


def _has_line_break(column: pa.Array) -> bool:
    if not pa.types.is_string(column.type):
        return False
    found = pc.or_(pc.match_substring(column, "\n"), pc.match_substring(column, "\r"))
    return bool(pc.any(found).as_py())


def _malformed_batch(
    lines: list[str], header: list[str], spec: DatasetSpec, schema: pa.Schema
) -> pa.RecordBatch:
    """Rows that do not split into the header's fields as Spark keeps them: the fields there are,
    padded with nulls or cut to the header's, and the line itself as the corrupt record."""
    rows = []
    for line in lines:
        split = csv.reader(io.StringIO(line), delimiter=spec.csv.delimiter, quotechar=spec.csv.quote)
        fields = next(split, [])
        fields = (fields + [""] * len(header))[: len(header)]
        rows.append([f if f != "" else None for f in fields] + [line])
    columns = [pa.array(list(col), pa.string()) for col in zip(*rows, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


@contextmanager
def _readable(inp: InputFiles, uri: str, encoding: str) -> Iterator[None]:
    """Arrow's failure to read a file as its format as a DataContractError naming the file; never
    Arrow's message for CSV, which may quote the file's content."""
    try:
        yield
    except pa.ArrowInvalid as exc:
        name = posixpath.basename(uri)
        if inp.format == "parquet":
            reason = f"{name} is not a readable Parquet file ({str(exc).splitlines()[0][:200]})"
        elif "UTF8" in str(exc) or "UTF-8" in str(exc):
            reason = f"{name} is not {encoding} text"
        else:
            reason = f"{name} does not parse as CSV"
        raise DataContractError(f"input {inp.uri} cannot be read as {inp.format}: {reason}") from None


# -- the engine ---------------------------------------------------------------------------------


def write_scores(
    inp: InputFiles,
    spec: DatasetSpec,
    scorer: Scorer,
    version: str,
    out: str,
    parts: list[tuple[str, list[int] | None]] | None = None,
    shard: int = 0,
) -> Tally:
    """Score the input's files (or `parts`: files and, of Parquet files, row groups) into `out`:
    part files, and `_rejected/` part files when rows break the spec, then Spark's `_SUCCESS`.
    The counts come back; the caller commits or discards."""
    tally = Tally()
    run = secrets.token_hex(4)
    for n, (uri, row_groups) in enumerate(parts or [(f, None) for f in inp.files]):
        before = (tally.rows, tally.rejected)
        name = f"part-{shard:05d}-{n:05d}-{run}.parquet"
        with (
            _PartWriter(storage.join(out, name)) as scored_out,
            _PartWriter(storage.join(out, "_rejected", name)) as rejected_out,
        ):
            said = time.monotonic()
            for batch in raw_batches(inp, uri, spec, row_groups):
                scored, rejected = score_batch(batch, spec, scorer, version, tally)
                scored_out.write(scored, always=True)
                rejected_out.write(rejected)
                if time.monotonic() - said >= PROGRESS_SECONDS:
                    said = time.monotonic()
                    _say_counts(posixpath.basename(uri), tally, before, "so far")
        tally.parts += [
            rel for rel, part in ((name, scored_out), (f"_rejected/{name}", rejected_out)) if part.opened
        ]
        groups = f" (row groups {row_groups})" if row_groups is not None else ""
        _say_counts(f"{posixpath.basename(uri)}{groups}", tally, before)
    # Spark's marker of a complete output: what readers of the partition (and the commit) look for.
    storage.write_bytes(storage.join(out, MARKER), b"")
    return tally


def _say_counts(name: str, tally: Tally, before: tuple[int, int], when: str = "") -> None:
    rows, rejected = tally.rows - before[0], tally.rejected - before[1]
    log.info(
        "%s: %s row(s) read%s, %s rejected, %s scored",
        name, f"{rows:,}", f" {when}" if when else "", f"{rejected:,}", f"{rows - rejected:,}",
    )  # fmt: skip


class _PartWriter:
    """One Parquet part file, opened on the first batch worth writing (an empty batch opens it
    only when `always`, so that every input file has a scored part even if no row passed)."""

    def __init__(self, uri: str):
        self.uri = uri
        self._sink: Any = None
        self._writer: Any = None

    def write(self, batch: pa.RecordBatch, always: bool = False) -> None:
        if batch.num_rows == 0 and (self._writer is not None or not always):
            return
        if self._writer is None:
            fs, path = storage.filesystem(self.uri)
            if storage.is_local(self.uri):  # an object store has no folders (s3fs would create the bucket)
                fs.makedirs(posixpath.dirname(path), exist_ok=True)
            self._sink = fs.open(path, "wb")
            self._writer = pq.ParquetWriter(self._sink, batch.schema, compression="snappy")
        self._writer.write_batch(batch)

    @property
    def opened(self) -> bool:
        return self._writer is not None

    def __enter__(self) -> _PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
