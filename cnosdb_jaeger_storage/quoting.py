"""The one place that quotes SQL and escapes line protocol.

Everything that reaches CnosDB as text (SQL literals and identifiers, line-protocol names and values)
passes through this module, so that a hostile service name, span name or attribute cannot change the
meaning of a statement or a line.

Line protocol follows CnosDB's parser (`common/protocol_parser/src/line_protocol/parser.rs`, v2.4.3):

- In a measurement, tag key, tag value or field key a backslash escapes the next character, which must
  be one of `,` space `=` `\\` `"` `'` (no `=` in a measurement). Only the backslash before `,` space
  `=` is removed; `\\\\`, `\\"` and `\\'` are stored verbatim, and a raw newline cannot be carried.
- A string field value is quoted; inside, `\\\\` and `\\"` are unescaped and anything else, newlines
  included, is carried as itself.

So tag values and attribute keys are stored in an encoding of their own (docs/schema.md, "Names and
values that line protocol cannot carry"): `\\` → `\\\\`, newline → `\\'`, carriage return → `\\"`.
Every backslash of the stored form is then followed by a character CnosDB keeps verbatim, and the
stored text decodes back exactly (`decode_stored_name`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "decode_stored_name",
    "lp_field_key",
    "lp_field_string",
    "lp_measurement",
    "lp_tag_key",
    "lp_tag_value",
    "sql_identifier",
    "sql_number",
    "sql_string",
    "sql_timestamp",
    "stored_name",
]

# --- SQL -------------------------------------------------------------------------------------------


def sql_string(value: str) -> str:
    """A SQL string literal: `'…'` with `'` doubled.

    NUL is refused: a C-string boundary anywhere between here and the storage engine could cut the
    literal short, and no name or value this server searches for legitimately contains it.
    """
    if "\0" in value:
        raise ValueError("a SQL string literal cannot contain NUL")
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier: `"…"` with `"` doubled (quoting also keeps upper case, as CnosDB needs)."""
    if not name:
        raise ValueError("a SQL identifier cannot be empty")
    if "\0" in name:
        raise ValueError("a SQL identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1


def sql_timestamp(ns: int) -> str:
    """Unix nanoseconds as an expression comparable with CnosDB's tz-less TIMESTAMP(NANOSECOND) `time`.

    A cast of an ISO-8601 string: DataFusion 27 (CnosDB) and DataFusion 55 both parse it to
    TimestampNanosecond and fold it into a literal the scan can prune with. Integers will not do: DataFusion
    27 reads `CAST(<int> AS TIMESTAMP)` and `to_timestamp(<int>)` as nanoseconds, 55 as seconds, and
    `to_timestamp_nanos` does not exist in 27.
    """
    # Beyond the int64 range no TIMESTAMP(NANOSECOND) exists; the range's ends compare the same way.
    ns = min(max(int(ns), _NS_MIN), _NS_MAX)
    seconds, nanos = divmod(ns, 1_000_000_000)
    t = _EPOCH + timedelta(seconds=seconds)
    return (f"CAST('{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            f".{nanos:09d}' AS TIMESTAMP)")


def sql_number(x: int | float) -> str:
    """A numeric SQL literal. Booleans and non-finite floats have no numeric literal and are refused."""
    if isinstance(x, bool):
        raise TypeError("a bool is not a SQL number")
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"{x!r} has no SQL numeric literal")
        return repr(x)
    raise TypeError(f"not a number: {x!r}")


# --- stored form of tag values and attribute keys ---------------------------------------------------

_STORE = str.maketrans({"\\": "\\\\", "\n": "\\'", "\r": '\\"'})
_NEEDS_STORE = re.compile(r"[\\\n\r]")
_STORED_ESCAPE = re.compile(r"\\([\\'\"])")
_UNSTORE = {"\\": "\\", "'": "\n", '"': "\r"}


def stored_name(value: str) -> str:
    """How a tag value or attribute key looks in the database (and so in SQL literals and column names)."""
    if _NEEDS_STORE.search(value) is None:
        return value
    return value.translate(_STORE)


def decode_stored_name(stored: str) -> str:
    """The exact inverse of `stored_name`.

    Text that `stored_name` cannot have produced (a lone or trailing backslash, or one before any other
    character, as in tag values CnosDB's own trace writer JSON-escapes) keeps its backslashes verbatim.
    """
    if "\\" not in stored:
        return stored
    return _STORED_ESCAPE.sub(lambda m: _UNSTORE[m.group(1)], stored)


# --- line protocol ---------------------------------------------------------------------------------

_LP_NAME = str.maketrans({"\\": "\\\\", "\n": "\\'", "\r": '\\"', ",": "\\,", " ": "\\ ", "=": "\\="})
_LP_NAME_SPECIAL = re.compile(r"[\\\n\r, =]")
_LP_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_LP_MEASUREMENT_BAD = re.compile(r"[\\=\n\r]")


def lp_measurement(name: str) -> str:
    """A measurement (table) name. Names line protocol cannot carry verbatim are refused.

    A backslash would be stored verbatim with its escape, `=` cannot be escaped in a measurement,
    newlines end the line, and a leading `#` or blank turns the line into a comment or is skipped.
    """
    if not name:
        raise ValueError("a table name cannot be empty")
    if _LP_MEASUREMENT_BAD.search(name) or name[0] == "#" or name[0].isspace():
        raise ValueError(f"table name {name!r} cannot be written with line protocol")
    return name.translate(_LP_MEASUREMENT)


def lp_tag_key(key: str) -> str:
    """A tag key: the stored form, with `,` space `=` escaped."""
    if not key:
        raise ValueError("a tag key cannot be empty")
    return lp_field_key(key)


def lp_tag_value(value: str) -> str:
    """A tag value: the stored form, with `,` space `=` escaped. Callers omit empty tag values."""
    if _LP_NAME_SPECIAL.search(value) is None:
        return value
    return value.translate(_LP_NAME)


def lp_field_key(key: str) -> str:
    """A field key (column name, attribute keys included): the stored form, `,` space `=` escaped."""
    if _LP_NAME_SPECIAL.search(key) is None:
        return key
    return key.translate(_LP_NAME)


def lp_field_string(value: str) -> str:
    """A string field value: quoted, `\\` and `"` escaped; any other character is carried as itself."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    return '"' + value + '"'
