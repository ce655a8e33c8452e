"""The row rules both scoring engines compile (test_engine_parity holds them to the same
results): which rules a value of each kind keeps for each spec type, and a row's order."""

from __future__ import annotations

import pytest

from spark_jobs.data.row_rules import (
    ABOVE,
    BELOW,
    DECIMAL,
    FLOATING,
    INEXACT,
    INTEGRAL,
    MALFORMED,
    MISSING,
    NOT_FINITE,
    NOT_INTEGER,
    NOT_NUMBER,
    NOT_WHOLE,
    OTHER,
    OUT_OF_RANGE,
    PRESENT,
    TEXT,
    row_rules,
    value_rules,
)
from spark_jobs.spec import parse_spec

SPEC = """
name: t
format: csv
target: {column: y, positive: "1", negative: "0"}
contract: {max_null_ratio: 0.5}
columns:
  n: {type: integer, role: numeric, min: 1, max: 31, max_null_ratio: 0}
  s: {type: string, role: categorical}
  d: {type: double, role: numeric, min: 0.25}
  y: {type: string, role: target}
"""


@pytest.mark.parametrize(
    "kind, source, target, expected",
    [
        (TEXT, "string", "string", []),
        (INTEGRAL, "bigint", "string", [(PRESENT, "of type bigint, not text")]),
        (OTHER, "boolean", "double", [(PRESENT, "of type boolean, not a number")]),
        (OTHER, "timestamp", "integer", [(PRESENT, "of type timestamp, not an integer")]),
        (TEXT, "string", "double", [(NOT_NUMBER, "not a number"), (NOT_FINITE, "not a finite number")]),
        (
            TEXT,
            "string",
            "integer",
            [(NOT_INTEGER, "not an integer"), (OUT_OF_RANGE, "outside the range of a 32-bit integer")],
        ),
        (
            FLOATING,
            "double",
            "long",
            [
                (NOT_FINITE, "not a finite number"),
                (NOT_WHOLE, "not a whole number"),
                (OUT_OF_RANGE, "outside the range of a 64-bit integer"),
            ],
        ),
        (
            DECIMAL,
            "decimal(20,0)",
            "integer",
            [(NOT_WHOLE, "not a whole number"), (OUT_OF_RANGE, "outside the range of a 32-bit integer")],
        ),
        (INTEGRAL, "bigint", "integer", [(OUT_OF_RANGE, "outside the range of a 32-bit integer")]),
        (INTEGRAL, "bigint", "double", [(INEXACT, "outside the integers a double holds exactly")]),
        (FLOATING, "float", "double", [(NOT_FINITE, "not a finite number")]),
        (DECIMAL, "decimal(38,18)", "double", []),
    ],
)
def test_a_value_keeps_the_rules_of_its_kind_and_the_spec_type(kind, source, target, expected):
    assert [(rule.test, rule.what) for rule in value_rules(kind, source, target)] == expected


def test_a_rows_rules_come_in_one_order_with_their_words():
    spec = parse_spec(SPEC)
    kinds = {"n": (TEXT, "string"), "s": (INTEGRAL, "int"), "d": (FLOATING, "double")}
    rules = row_rules(spec, kinds, malformed=True)
    assert [(rule.test, rule.what, rule.column) for rule in rules] == [
        (MALFORMED, "malformed row", "_corrupt_record"),
        (MISSING, "n: missing", "n"),  # no nulls allowed: training saw none
        (NOT_INTEGER, "n: not an integer", "n"),
        (OUT_OF_RANGE, "n: outside the range of a 32-bit integer", "n"),
        (BELOW, "n: below the minimum 1", "n"),
        (ABOVE, "n: above the maximum 31", "n"),
        (PRESENT, "s: of type int, not text", "s"),
        (NOT_FINITE, "d: not a finite number", "d"),
        (BELOW, "d: below the minimum 0.25", "d"),
    ]
    # What each reason shows after its words: the value as read, a fixed text, or nothing.
    shown = {rule.what: (rule.shows_value, rule.detail) for rule in rules}
    assert shown["malformed row"] == (False, "does not split into the header's fields")
    assert shown["n: missing"] == (False, None)
    assert shown["n: not an integer"] == shown["d: below the minimum 0.25"] == (True, None)
    assert [rule.bound for rule in rules if rule.test in (BELOW, ABOVE)] == [1, 31, 0.25]
    assert [rule.test for rule in row_rules(spec, kinds, malformed=False)][0] == MISSING
