"""Values as Spark reads and prints them, in plain Python: so that scoring without a JVM
(spark_jobs.scoring.score_arrow) takes, refuses and reports exactly what the Spark job does.

- `text_to_double`, `text_to_integer`: Spark's casts from text (Java's `Double.parseDouble`
  with Spark's own words for infinity and NaN; whole numbers by the contract's pattern);
- `to_text`: a value as Spark's `cast(... as string)` prints it (`1.0E7`, `Infinity`, `true`);
- `sample`: that text cut to what a message may show;
- `simple_string`: an Arrow type by the name Spark gives the type it reads it as (`bigint`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import Any

from spark_jobs.data.contract import SAMPLE_CHARS
from spark_jobs.data.row_rules import INTEGER_PATTERN, INTEGER_RANGES, NOT_INTEGER, OUT_OF_RANGE

# Java's String.trim (and so parseDouble and Spark's integral casts) strips every char <= ' '.
JAVA_SPACE = "".join(chr(c) for c in range(33))
_WHOLE = re.compile(INTEGER_PATTERN, re.ASCII)
# Java's FloatingDecimal grammar: decimal (with an optional type suffix), NaN, Infinity, and
# hexadecimal with a binary exponent.
_DECIMAL = re.compile(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)", re.ASCII)
_HEX = re.compile(r"([+-]?)0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP]([+-]?\d+)[fFdD]?", re.ASCII)
# What Spark takes when Java does not (Cast.processFloatingPointSpecialLiterals), lower-cased.
_SPECIAL = {
    "inf": math.inf,
    "+inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-inf": -math.inf,
    "-infinity": -math.inf,
    "nan": math.nan,
}


def text_to_double(text: str) -> float | None:
    """`cast(text as double)`: the number, or None where Spark gives null."""
    trimmed = text.strip(JAVA_SPACE)
    if _DECIMAL.fullmatch(trimmed):
        return float(trimmed.rstrip("fFdD") if trimmed[-1:] not in ("N", "y") else trimmed)
    if hexadecimal := _HEX.fullmatch(trimmed):
        sign, mantissa, exponent = hexadecimal.groups()
        return float.fromhex(f"{sign}0x{mantissa}p{exponent}")
    return _SPECIAL.get(trimmed.lower())


def text_to_integer(text: str, type_name: str) -> tuple[int | None, str | None]:
    """A text value read as the spec's integer type: (the value, None), or (None, the test of
    row_rules it fails)."""
    if not _WHOLE.fullmatch(text):
        return None, NOT_INTEGER
    low, high, _ = INTEGER_RANGES[type_name]
    value = int(text.strip(JAVA_SPACE).split(".", 1)[0])
    if not low <= value <= high:
        return None, OUT_OF_RANGE
    return value, None


def double_text(value: float, digits: str | None = None) -> str:
    """A double as Java's `Double.toString` (and so Spark) prints it: plain between 10^-3 and 10^7,
    else `d.dddE<n>`; `digits` is the shortest text of a float32 (Java's `Float.toString`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0.0"
    exact = decimal.Decimal(digits or repr(abs(value))).normalize()
    _, figures, exponent = exact.as_tuple()
    text = "".join(map(str, figures))
    scientific = len(text) - 1 + int(exponent)
    if 1e-3 <= abs(value) < 1e7:
        plain = format(exact, "f")
        return sign + (plain if "." in plain else plain + ".0")
    return f"{sign}{text[0]}.{text[1:] or '0'}E{scientific}"


def to_text(value: Any, arrow_type: Any = None) -> str:
    """A value (as Arrow gives it to Python) as Spark's cast to string prints it."""
    import pyarrow as pa

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if arrow_type is not None and pa.types.is_float32(arrow_type):
            import numpy as np

            return double_text(value, str(abs(np.float32(value))))
        return double_text(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text + (f".{value.microsecond:06d}".rstrip("0") if value.microsecond else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        inner = getattr(arrow_type, "value_type", None)
        return "[" + ", ".join("null" if v is None else to_text(v, inner) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join("null" if v is None else to_text(v) for v in value.values()) + "}"
    return str(value)


def sample(value: Any, arrow_type: Any = None) -> str:
    """A value as text for a message: at most SAMPLE_CHARS characters of it (contract.sample)."""
    text = value if isinstance(value, str) else to_text(value, arrow_type)
    return text[:SAMPLE_CHARS] + "..." if len(text) > SAMPLE_CHARS else text


def simple_string(arrow_type: Any) -> str:
    """The name of the Spark type an Arrow (Parquet) type is read as: int64 is `bigint`."""
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(arrow_type):
        return simple_string(arrow_type.value_type)
    if t.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if t.is_timestamp(arrow_type):
        return "timestamp" if arrow_type.tz else "timestamp_ntz"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        return f"array<{simple_string(arrow_type.value_type)}>"
    if t.is_struct(arrow_type):
        fields = (arrow_type.field(i) for i in range(arrow_type.num_fields))
        return "struct<" + ",".join(f"{f.name}:{simple_string(f.type)}" for f in fields) + ">"
    if t.is_map(arrow_type):
        return f"map<{simple_string(arrow_type.key_type)},{simple_string(arrow_type.item_type)}>"
    names = {
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.uint8(): "smallint",
        pa.uint16(): "int",
        pa.uint32(): "bigint",
        pa.uint64(): "decimal(20,0)",
        pa.float16(): "float",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.string(): "string",
        pa.large_string(): "string",
        pa.binary(): "binary",
        pa.large_binary(): "binary",
        pa.date32(): "date",
        pa.date64(): "date",
    }
    return names.get(arrow_type, str(arrow_type))
