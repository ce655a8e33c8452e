"""The rules a row of a day's input must keep to be scored, defined once for both engines.

Which rules apply to a feature (by its spec and by how the file holds it), in what order, and in
what words: the Spark engine (contract.typed_column, score.row_checks) turns each rule's test into
a Column condition, the Arrow engine (score_arrow) into a numpy mask; a rejected row's reason
lists every rule it breaks, in this order. Nothing here imports Spark or Arrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from spark_jobs.spec import DatasetSpec

# How a file holds a column, whatever the engine reading it.
TEXT = "text"  # CSV, or a Parquet string column
INTEGRAL = "integral"  # a signed or unsigned integer column
FLOATING = "floating"  # float or double
DECIMAL = "decimal"  # decimal (and uint64, which Spark reads as decimal(20,0))
OTHER = "other"  # boolean, date, timestamp, binary, nested: no spec type takes it

# The tests a value's rules use; each engine implements every one.
PRESENT = "present"  # there is a value at all (its type cannot hold the spec's)
NOT_NUMBER = "not a number"  # text that does not parse as a number
NOT_FINITE = "not finite"  # NaN or an infinity (parsed from text, or a float column's)
NOT_INTEGER = "not an integer"  # text that is not a whole number (contract.INTEGER_PATTERN)
NOT_WHOLE = "not whole"  # a fraction where the spec wants an integer
OUT_OF_RANGE = "out of range"  # a whole number beyond the spec's integer type
INEXACT = "inexact"  # an integer beyond those a double holds exactly (2^53)
# The row's own tests.
MALFORMED = "malformed"  # a CSV line that does not split into the header's fields
MISSING = "missing"  # null where training saw no nulls (imputing one would be a guess)
BELOW = "below"  # under the spec's minimum
ABOVE = "above"  # over the spec's maximum

# The spec's integer types as Spark holds them (int, bigint): their range and name.
INTEGER_RANGES = {
    "integer": (-(2**31), 2**31 - 1, "a 32-bit integer"),
    "long": (-(2**63), 2**63 - 1, "a 64-bit integer"),
}
# Whole numbers as text: "41" and "41.0" (Spark's integral cast takes both; "4.1" it truncates).
INTEGER_PATTERN = r"^\s*[+-]?[0-9]+(\.0*)?\s*$"
# Integers a double holds exactly: beyond 2^53 a double rounds.
EXACT_IN_DOUBLE = 2**53
TARGET_WORDS = {"string": "text", "integer": "an integer", "long": "an integer", "double": "a number"}
MALFORMED_DETAIL = "does not split into the header's fields"
# The column a raw read of CSV sets on a row that does not split (Spark's name for it).
CORRUPT = "_corrupt_record"


@dataclass(frozen=True)
class Rule:
    """One rule: `test` (what an engine checks on `column` of the raw read), `what` (the reason's
    words) and what the reason shows after them: the value as read (`shows_value`), a fixed
    `detail`, or nothing."""

    test: str
    what: str
    column: str = ""
    shows_value: bool = False
    detail: str | None = None
    bound: float | None = None  # BELOW's minimum, ABOVE's maximum


def value_rules(kind: str, source_type: str, target: str) -> list[Rule]:
    """The rules a value of a column held as `kind` (`source_type`: Spark's name for its type)
    must keep to be read as the spec's `target` type: by what it means, nothing changed to fit.
    An integer takes only whole numbers within its range (no truncation, overflow or wrap), a
    double only finite numbers, a string only text."""
    if target == "string":
        return [] if kind == TEXT else [Rule(PRESENT, f"of type {source_type}, not text")]
    if kind == OTHER:
        return [Rule(PRESENT, f"of type {source_type}, not {TARGET_WORDS[target]}")]
    if target == "double":
        if kind == TEXT:
            return [Rule(NOT_NUMBER, "not a number"), Rule(NOT_FINITE, "not a finite number")]
        if kind == FLOATING:
            return [Rule(NOT_FINITE, "not a finite number")]
        if kind == INTEGRAL:
            return [Rule(INEXACT, "outside the integers a double holds exactly")]
        return []  # a decimal's every value is a double's (rounded, as Spark casts it)
    out_of_range = Rule(OUT_OF_RANGE, f"outside the range of {INTEGER_RANGES[target][2]}")
    if kind == TEXT:
        return [Rule(NOT_INTEGER, "not an integer"), out_of_range]
    whole = [Rule(NOT_WHOLE, "not a whole number")] if kind in (FLOATING, DECIMAL) else []
    finite = [Rule(NOT_FINITE, "not a finite number")] if kind == FLOATING else []
    return [*finite, *whole, out_of_range]


def row_rules(spec: DatasetSpec, kinds: Mapping[str, tuple[str, str]], malformed: bool) -> list[Rule]:
    """Every rule a row of a raw read can break, in the order its reason lists them. `kinds`
    gives each feature's (kind, source type) as the file holds it; `malformed` whether the read
    marks rows that did not split (CSV)."""
    rules = [Rule(MALFORMED, "malformed row", CORRUPT, detail=MALFORMED_DETAIL)] if malformed else []
    for name in spec.features:
        col = spec.columns[name]
        if spec.max_null_ratio(name) == 0:
            rules.append(Rule(MISSING, f"{name}: missing", name))
        for rule in value_rules(*kinds[name], col.type):
            rules.append(Rule(rule.test, f"{name}: {rule.what}", name, shows_value=True))
        # Out of range: the value as read, as the rules above show it (what the file holds).
        if col.min is not None:
            rules.append(Rule(BELOW, f"{name}: below the minimum {col.min:g}", name, True, bound=col.min))
        if col.max is not None:
            rules.append(Rule(ABOVE, f"{name}: above the maximum {col.max:g}", name, True, bound=col.max))
    return rules
