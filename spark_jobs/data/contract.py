"""Data contract: read the input the spec describes and stop with one clear message if it breaks it.

Two stages. `inspect_input` needs no Spark: it finds the files, fingerprints them and checks the
CSV header (missing columns, wrong delimiter, empty file), so the commonest mistakes fail in a
second. `read_checked` reads with Spark and checks what needs a pass over the data: row count,
malformed rows, unparseable values and null ratios in one aggregation, then value rules (ranges,
target labels) with pandera's PySpark schema.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import logging
import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import fsspec

from spark_jobs import storage
from spark_jobs.data.row_rules import (
    CORRUPT,
    DECIMAL,
    EXACT_IN_DOUBLE,
    FLOATING,
    INEXACT,
    INTEGER_PATTERN,
    INTEGER_RANGES,
    INTEGRAL,
    NOT_FINITE,
    NOT_INTEGER,
    NOT_NUMBER,
    NOT_WHOLE,
    OTHER,
    OUT_OF_RANGE,
    PRESENT,
    TEXT,
    Rule,
    value_rules,
)
from spark_jobs.errors import DataContractError, JobError
from spark_jobs.spec import DatasetSpec

log = logging.getLogger("spark_jobs.data.contract")

_OTHER_DELIMITERS = (",", ";", "\t", "|")
_EXAMPLES = 3
_REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class InputFiles:
    """The resolved input: its data files and a fingerprint of their content."""

    uri: str
    files: tuple[str, ...]
    fingerprint: str
    header: tuple[str, ...] | None  # CSV only
    format: str = "csv"


def inspect_input(
    uri: str, spec: DatasetSpec, columns: Sequence[str] | None = None, fmt: str | None = None
) -> InputFiles:
    """Resolve and fingerprint the input; check what can be checked without Spark.

    `columns` the input must have (default: all the spec's); `fmt` csv, parquet, or "auto" (Parquet
    when every file ends in .parquet), by default the spec's format.
    """
    uri = storage.normalize(uri)
    files = _resolve(uri)
    fingerprint = _fingerprint(files)
    if fmt == "auto":
        fmt = "parquet" if all(f.endswith(".parquet") for f in files) else "csv"
    fmt = fmt or spec.format
    header = None
    if fmt == "csv":
        required = [spec.source(c) for c in (spec.columns if columns is None else columns)]
        header = _check_csv_head(files[0], spec, required, single_file=len(files) == 1)
    return InputFiles(uri=uri, files=tuple(files), fingerprint=fingerprint, header=header, format=fmt)


def _resolve(uri: str) -> list[str]:
    fs, path = storage.filesystem(uri)
    # Keep the user's scheme (s3a:// stays s3a://): Spark, not fsspec, reads the files.
    scheme = uri.split("://", 1)[0] + "://" if "://" in uri else ""

    def data_files(paths: list[str]) -> list[str]:
        # Spark's own convention: _SUCCESS, _committed and .crc files are not data.
        found = []
        for p in paths:
            for f in fs.find(p) if fs.isdir(p) else [p]:
                if not posixpath.basename(f).startswith(("_", ".")):
                    found.append(f)
        return sorted(found)

    if any(ch in path for ch in "*?["):
        matched = fs.glob(path)
        if not matched:
            raise DataContractError(f"input pattern {uri} matches no files")
        found = data_files(matched)
    elif fs.isdir(path):
        found = data_files([path])
    elif fs.exists(path):
        found = [path]
    else:
        raise DataContractError(f"input not found: {uri}")
    if not found:
        raise DataContractError(f"input {uri} holds no data files")
    return [scheme + p.lstrip("/") if scheme else p for p in found]


def _fingerprint(files: list[str]) -> str:
    """sha256 over every file's name and content digest: equal fingerprints mean equal data.

    Local files are hashed. Object-store files use the store's own content tag (S3's ETag) and
    size, so a fingerprint never downloads the dataset to the driver.
    """
    digest = hashlib.sha256()
    for f in files:
        fs, path = storage.filesystem(f)
        if storage.is_local(f):
            content = storage.sha256_of(fs, path)
        else:
            info = fs.info(path)
            content = f"etag={info.get('ETag', info.get('etag', ''))};size={info.get('size')}"
        digest.update(f"{posixpath.basename(path)}\0{content}\n".encode())
    return "sha256:" + digest.hexdigest()


def _check_csv_head(uri: str, spec: DatasetSpec, required: list[str], single_file: bool) -> tuple[str, ...]:
    lines = _head_lines(uri, spec.csv.encoding)
    if not lines:
        raise DataContractError(f"input {uri} is empty: expected a header line and data rows")
    # A UTF-8 byte order mark is not part of the first name (Spark drops it too).
    header = _split(lines[0].removeprefix("\ufeff"), spec.csv.delimiter, spec.csv.quote)
    missing = [c for c in required if c not in header]
    if missing:
        raise DataContractError(_missing_columns_message(uri, spec, required, header, missing, lines[0]))
    if single_file and len(lines) < 2:
        raise DataContractError(f"input {uri} has a header but no data rows")
    return tuple(header)


def _head_lines(uri: str, encoding: str) -> list[str]:
    """The first two non-blank lines of a (possibly compressed) text file."""
    with fsspec.open(uri, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    if gzipped and not uri.endswith(".gz"):
        # Spark, like fsspec, decompresses by the file's name: undecoded, it reads as garbage.
        raise DataContractError(
            f"input {uri} is gzip-compressed but its name does not end in .gz: rename it "
            f"({posixpath.basename(uri)}.gz) so that Spark decompresses it"
        )
    lines: list[str] = []
    try:
        with fsspec.open(uri, "rt", compression="infer", encoding=encoding, newline="") as fh:
            for line in fh:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                if len(lines) == 2:
                    break
    except UnicodeDecodeError as exc:
        raise DataContractError(
            f"input {uri} is not {encoding} text ({exc.reason} at byte {exc.start}); "
            "set csv.encoding in the spec"
        ) from None
    return lines


def _split(line: str, delimiter: str, quote: str) -> list[str]:
    """A CSV line's fields; [] when the line does not parse as CSV with this delimiter and quote
    (a field over the csv module's limit: the line is not split by this delimiter at all)."""
    try:
        return next(csv.reader(io.StringIO(line), delimiter=delimiter, quotechar=quote))
    except csv.Error:
        return []


def _missing_columns_message(
    uri: str, spec: DatasetSpec, required: list[str], header: list[str], missing: list[str], line: str
) -> str:
    for other in _OTHER_DELIMITERS:
        if other != spec.csv.delimiter and set(required) <= set(_split(line, other, spec.csv.quote)):
            return (
                f"input {uri}: the header splits into {len(header)} column(s) with the spec's "
                f"delimiter {spec.csv.delimiter!r}, but the file looks {other!r}-delimited; "
                f"fix the file or set csv.delimiter: {other!r} in the spec"
            )
    # The header is whatever the file's first line holds (a file given by mistake may hold
    # secrets): show only names that look like a missing column, cut short, never the line.
    typos = [
        f"{found[0][:40]!r} looks like {name!r}"
        for name in missing
        if (found := difflib.get_close_matches(name, header, n=1, cutoff=0.75))
    ]
    return (
        f"input {uri} is missing column(s) {', '.join(repr(c) for c in missing)} "
        f"required by spec {spec.name!r}; its header has {len(header)} field(s)"
        + (f"; {', '.join(typos)}" if typos else "")
    )


def read_checked(spark: Any, inp: InputFiles, spec: DatasetSpec) -> Any:
    """Read the input with Spark, enforce the contract, return a DataFrame typed as the spec says."""
    with readable(inp):
        raw = read_raw(spark, inp, spec, list(spec.columns))
        extra = [c for c in raw.columns if c not in spec.columns and c != CORRUPT]
        if extra:
            # Thousands of them made training ten times slower, silently: say so, keep only the spec's.
            shown = ", ".join(repr(c[:40]) for c in extra[:5]) + (", ..." if len(extra) > 5 else "")
            log.warning(
                "%d column(s) of %s are not in spec %s and are ignored: %s",
                len(extra),
                inp.uri,
                spec.name,
                shown,
            )
            raw = raw.select(*[quoted(c) for c in raw.columns if c not in extra])
        raw = raw.cache()
        typed = raw.select(*[cast_column(raw, n, c.type).alias(n) for n, c in spec.columns.items()])
        problems = _pass_problems(raw, inp, spec)
        if not problems:
            typed = typed.cache()
            problems = _value_problems(typed, spec)
        raw.unpersist()
    if problems:
        raise DataContractError(
            f"input {inp.uri} breaks the data contract of spec {spec.name!r}:\n  - " + "\n  - ".join(problems)
        )
    return typed


@contextmanager
def readable(inp: InputFiles) -> Iterator[None]:
    """Turn Spark's failure to read the input into a DataContractError naming the input."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import AnalysisException, IllegalArgumentException

    try:
        yield
    except (AnalysisException, IllegalArgumentException, Py4JJavaError) as exc:
        # Files Spark cannot read as their format (a corrupt Parquet file, CSV parts whose
        # headers differ): say which input and why, without a Java stack trace.
        reason = spark_reason(exc, inp.files)
        if inp.format == "parquet" and (broken := _unreadable_parquet(inp.files)):
            reason = f"{broken}; {reason}"
        if _NOT_THE_DATA.search(reason):
            raise JobError(f"Spark cannot reach the input {inp.uri}: {reason}") from None
        raise DataContractError(f"input {inp.uri} cannot be read as {inp.format}: {reason}") from None


def _unreadable_parquet(files: Sequence[str]) -> str:
    """The first file whose Parquet footer cannot be read (Spark's error does not name it)."""
    import pyarrow.parquet as pq

    for uri in files:
        try:
            with fsspec.open(uri, "rb") as fh:
                pq.read_metadata(fh)
        except Exception:  # any reason at all: this is the file to name
            return f"{posixpath.basename(uri)} is not a readable Parquet file"
    return ""


# Failures of the Spark installation, not of the data: not a contract violation (not exit 3).
# (Without the S3A jars, Hadoop says "Class org.apache.hadoop.fs.s3a.S3AFileSystem not found".)
_NOT_THE_DATA = re.compile(
    r"No FileSystem for scheme|ClassNotFoundException|UnsupportedFileSystemException|Class \S+ not found"
)


def spark_reason(exc: BaseException, files: Sequence[str] = ()) -> str:
    """What Spark says went wrong, in one line of at most 300 characters: of the Java exception and
    its causes, the message naming one of `files` (or the innermost), not py4j's "An error
    occurred while calling o722.collectToPython"."""
    messages = []
    java = getattr(exc, "java_exception", None)
    while java is not None:
        message = java.getMessage()
        if message:
            messages.append(str(message).strip().splitlines()[0])
        java = java.getCause()
    if not messages:
        messages = [str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__]
    names = [posixpath.basename(f) for f in files]
    naming = [m for m in messages if any(n and n in m for n in names)]
    reason = (naming or messages)[-1]
    return reason if len(reason) <= 300 else reason[:300] + "..."


def read_raw(spark: Any, inp: InputFiles, spec: DatasetSpec, columns: Sequence[str]) -> Any:
    """The input as Spark reads it, before types are checked (CSV values all as text, with a
    corrupt-record column for rows that do not split into the header's fields), its spec columns
    renamed from their source names to the spec's; other columns keep their names, whatever they are."""
    from pyspark.sql import types as T

    if inp.format == "parquet":
        raw = spark.read.parquet(*[storage.spark_uri(f) for f in inp.files])
        missing = [spec.source(c) for c in columns if spec.source(c) not in raw.columns]
        if missing:
            raise DataContractError(
                f"input {inp.uri} is missing column(s) {', '.join(repr(c) for c in missing)} "
                f"required by spec {spec.name!r}"
            )
        return _named_as_spec(raw, spec)
    assert inp.header is not None
    # Every column as text, so that values which do not parse are seen and reported, not
    # silently turned into nulls; the corrupt-record column catches rows with too few or too
    # many fields.
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in inp.header] + [T.StructField(CORRUPT, T.StringType())]
    )
    raw = spark.read.csv(
        [storage.spark_uri(f) for f in inp.files],
        schema=schema,
        header=True,
        enforceSchema=False,
        sep=spec.csv.delimiter,
        quote=spec.csv.quote,
        escape=spec.csv.quote,
        encoding=spark_encoding(spec.csv.encoding),
        mode="PERMISSIVE",
        columnNameOfCorruptRecord=CORRUPT,
    )
    return _named_as_spec(raw, spec)


def spark_encoding(encoding: str) -> str:
    """The spec's encoding as Spark's CSV reader names it: Python's utf-8-sig (UTF-8 that may start
    with a byte order mark) is UTF-8 to Spark, which drops the mark itself."""
    return "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig") else encoding


def quoted(name: str) -> Any:
    """A column by its exact name: Spark reads a bare `a.b` as field b of struct a."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _named_as_spec(raw: Any, spec: DatasetSpec) -> Any:
    names = {spec.source(name): name for name in spec.columns}
    if all(names.get(c, c) == c for c in raw.columns):
        return raw
    return raw.select(*[quoted(c).alias(names.get(c, c)) for c in raw.columns])


def _spark_type(type_name: str) -> str:
    return {"string": "string", "integer": "int", "long": "bigint", "double": "double"}[type_name]


# The most of a value a message shows: a sample, never the file's content.
SAMPLE_CHARS = 80


@dataclass(frozen=True)
class Typed:
    """A raw column read as its spec type: `value` is the typed value, null where the raw value is
    null or breaks a rule; `rules` are the rules a value can break (row_rules.value_rules), each
    with its condition."""

    value: Any
    rules: tuple[tuple[Rule, Any], ...]

    def condition(self, test: str) -> Any:
        return next(cond for rule, cond in self.rules if rule.test == test)


def spark_kind(data_type: Any) -> str:
    """How a Spark column holds its values, in row_rules' words."""
    from pyspark.sql import types as T

    if isinstance(data_type, T.StringType):
        return TEXT
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        return FLOATING
    if isinstance(data_type, T.DecimalType):
        return DECIMAL
    return INTEGRAL if isinstance(data_type, T.IntegralType) else OTHER


def typed_column(raw: Any, name: str, type_name: str) -> Typed:
    """Column `name` of a raw read as the spec's type, by row_rules.value_rules, whatever the file
    format: CSV values arrive as text, Parquet values with their own types. Nothing is changed
    to fit."""
    from pyspark.sql import functions as F

    source = raw.schema[name].dataType
    kind = spark_kind(source)
    cast, tests = _spark_tests(F.col(name), kind, type_name)
    return _typed(
        cast, [(rule, tests[rule.test]()) for rule in value_rules(kind, source.simpleString(), type_name)]
    )


def _spark_tests(column: Any, kind: str, type_name: str) -> tuple[Any, dict[str, Callable[[], Any]]]:
    """The column cast to the spec's type, and each test of row_rules as a Spark condition on it
    (built only when a rule asks for it)."""
    from pyspark.sql import functions as F

    spark_type = _spark_type(type_name)
    present: dict[str, Callable[[], Any]] = {PRESENT: column.isNotNull}
    if type_name == "string":
        return column.cast("string"), present
    if kind == OTHER:
        return F.lit(None).cast(spark_type), present
    if kind == TEXT:
        if type_name == "double":
            number = column.cast("double")
            return number, {
                NOT_NUMBER: lambda: column.isNotNull() & number.isNull(),
                NOT_FINITE: lambda: _not_finite(number),
            }
        whole = column.rlike(INTEGER_PATTERN)
        # Spark's cast gives null for digits beyond the type's range.
        integer = F.trim(column).cast(spark_type)
        return integer, {
            NOT_INTEGER: lambda: column.isNotNull() & ~whole,
            OUT_OF_RANGE: lambda: whole & integer.isNull(),
        }
    finite = ~_not_finite(column) if kind == FLOATING else F.lit(True)
    wide = column.cast("double") if kind == FLOATING else column

    def out_of_range() -> Any:  # asked for only when the spec's type is an integer
        low, high, _ = INTEGER_RANGES[type_name]
        if kind == INTEGRAL:
            return (column < low) | (column > high)
        return finite & ((wide < float(low)) | (wide >= float(high) + 1.0))

    return column.cast(spark_type), {
        NOT_FINITE: lambda: _not_finite(column),
        INEXACT: lambda: F.abs(column.cast("decimal(38,0)")) > EXACT_IN_DOUBLE,
        # Not `column != floor(column)`: Spark's floor of a double is a bigint, which 1e19 overflows.
        NOT_WHOLE: lambda: finite & (column % 1 != 0),
        OUT_OF_RANGE: out_of_range,
    }


def _not_finite(column: Any) -> Any:
    from pyspark.sql import functions as F

    return F.isnan(column) | (F.abs(column) == float("inf"))


def _typed(cast: Any, rules: list[tuple[Rule, Any]]) -> Typed:
    from functools import reduce

    from pyspark.sql import functions as F

    conditions = [F.coalesce(cond, F.lit(False)) for _, cond in rules]
    broken = reduce(lambda a, b: a | b, conditions, F.lit(False))
    return Typed(
        F.when(~broken, cast), tuple((rule, cond) for (rule, _), cond in zip(rules, conditions, strict=True))
    )


def cast_column(raw: Any, name: str, type_name: str) -> Any:
    """Column `name` of a raw read as the spec's type; null where a value breaks its type."""
    return typed_column(raw, name, type_name).value


def sample(value: Any) -> Any:
    """A value as text for a message: at most SAMPLE_CHARS characters of it."""
    from pyspark.sql import functions as F

    text = value.cast("string")
    cut = F.concat(F.substring(text, 1, SAMPLE_CHARS), F.lit("..."))
    return F.when(F.length(text) > SAMPLE_CHARS, cut).otherwise(text)


def _pass_problems(raw: Any, inp: InputFiles, spec: DatasetSpec) -> list[str]:
    """Row count, malformed rows, values that break their type and null ratios, in one pass."""
    from pyspark.sql import functions as F

    def count(cond: Any) -> Any:
        return F.sum(F.when(cond, 1).otherwise(0))

    typed = {name: typed_column(raw, name, col.type) for name, col in spec.columns.items()}
    aggs = [F.count(F.lit(1)).alias("rows")]
    if CORRUPT in raw.columns:
        aggs.append(count(F.col(CORRUPT).isNotNull()).alias("corrupt"))
    for i, name in enumerate(spec.columns):
        aggs.append(count(F.col(name).isNull()).alias(f"null_{i}"))
        aggs += [count(cond).alias(f"bad_{i}_{j}") for j, (_, cond) in enumerate(typed[name].rules)]
        if inp.format == "csv":
            # Spark swaps bytes that are not valid in the encoding for U+FFFD, silently.
            aggs.append(count(F.col(name).contains(_REPLACEMENT)).alias(f"enc_{i}"))
    stats = raw.agg(*aggs).first().asDict()

    rows = stats["rows"]
    if rows == 0:
        return ["the input has a header but no data rows" if inp.header else "the input has no rows"]
    problems = []
    if rows < spec.contract.min_rows:
        problems.append(f"only {rows} row(s); the spec requires at least {spec.contract.min_rows}")
    if stats.get("corrupt"):
        # Which files, not the lines themselves: a malformed line is raw file content.
        fields = len(inp.header or ())
        bad = raw.where(F.col(CORRUPT).isNotNull()).select(F.input_file_name()).distinct().limit(_EXAMPLES)
        files = [posixpath.basename(r[0]) for r in bad.collect()]
        problems.append(
            f"{stats['corrupt']} row(s) do not split into {fields} fields with delimiter "
            f"{spec.csv.delimiter!r}, in {_quote(files)}"
        )
    for i, name in enumerate(spec.columns):
        for j, (rule, cond) in enumerate(typed[name].rules):
            if stats[f"bad_{i}_{j}"]:
                problems.append(
                    f"column {name!r}: {stats[f'bad_{i}_{j}']} value(s) are {rule.what}, "
                    f"e.g. {_quote(_examples(raw, name, cond))}"
                )
        if stats.get(f"enc_{i}"):
            bad = F.col(name).contains(_REPLACEMENT)
            problems.append(
                f"column {name!r}: {stats[f'enc_{i}']} value(s) are not valid {spec.csv.encoding} text, "
                f"e.g. {_quote(_examples(raw, name, bad))}; set csv.encoding in the spec"
            )
        ratio, allowed = stats[f"null_{i}"] / rows, spec.max_null_ratio(name)
        if ratio > allowed:
            problems.append(
                f"column {name!r}: {stats[f'null_{i}']} of {rows} value(s) are missing "
                f"({ratio:.2%}); the spec allows {allowed:.2%}"
            )
        elif ratio == 1.0 and name in spec.features:
            problems.append(f"column {name!r} has no values at all; give it data or role: ignore")
    return problems


def _value_problems(typed: Any, spec: DatasetSpec) -> list[str]:
    """Ranges and target labels, through pandera's PySpark schema."""
    from pandera.config import ValidationDepth, config_context
    from pyspark.sql import functions as F

    schema = _pandera_schema(spec, typed)
    with config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        errors = dict(schema.validate(typed).pandera.errors)
    problems = []
    failed = sorted(
        {
            (err.get("column"), str(err.get("check")), err.get("error"))
            for kind in errors.values()
            for found in kind.values()
            for err in found
        },
        key=lambda e: list(spec.columns).index(e[0]) if e[0] in spec.columns else -1,
    )
    for column, check, error in failed:
        if column == spec.target.column:
            labels = [spec.target.negative, spec.target.positive]
            bad = ~F.col(column).isin(labels)
            problems.append(
                f"target column {column!r} has value(s) other than {labels}, "
                f"e.g. {_quote(_examples(typed, column, bad))}"
            )
        elif column in spec.columns:
            col = spec.columns[column]
            bad = F.lit(False)
            if col.min is not None:
                bad = bad | (F.col(column) < col.min)
            if col.max is not None:
                bad = bad | (F.col(column) > col.max)
            problems.append(
                f"column {column!r} fails {check} (allowed range {col.min} to {col.max}), "
                f"e.g. {_quote(_examples(typed, column, bad))}"
            )
        else:
            problems.append(str(error))
    return problems


def _pandera_schema(spec: DatasetSpec, typed: Any) -> Any:
    import pandera.pyspark as pa

    dtypes = {f.name: f.dataType for f in typed.schema.fields}
    columns = {}
    for name, col in spec.columns.items():
        checks = []
        if col.min is not None:
            checks.append(pa.Check.ge(col.min))
        if col.max is not None:
            checks.append(pa.Check.le(col.max))
        if name == spec.target.column:
            checks.append(pa.Check.isin([spec.target.negative, spec.target.positive]))
        # Nulls are judged by ratio in the aggregation pass.
        columns[name] = pa.Column(dtypes[name], checks=checks, nullable=True)
    return pa.DataFrameSchema(columns, name=spec.name)


def _examples(df: Any, column: str, bad: Any) -> list[str]:
    """A few distinct offending values, each cut to a short sample."""
    rows = df.where(bad).select(sample(df[column])).distinct().limit(_EXAMPLES).collect()
    return [str(r[0]) for r in rows]


def _quote(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values)


def main(argv: list[str] | None = None) -> int:
    """`python -m spark_jobs contract --input URI --spec URI`: the Spark-free checks, in a second.

    Prints the resolved input as JSON (files, fingerprint); exits 3 with the reason otherwise.
    """
    import argparse

    from spark_jobs.errors import run_cli
    from spark_jobs.interface import InputChecked
    from spark_jobs.locations import argument
    from spark_jobs.spec import load_spec

    parser = argparse.ArgumentParser(prog="python -m spark_jobs contract", description=main.__doc__)
    parser.add_argument("--input", required=True, type=argument("input"))
    parser.add_argument("--spec", required=True, type=argument("spec"))
    args = parser.parse_args(argv)

    def check() -> None:
        inp = inspect_input(args.input, load_spec(args.spec))
        print(InputChecked(uri=inp.uri, files=len(inp.files), fingerprint=inp.fingerprint).show())

    return run_cli(check)
