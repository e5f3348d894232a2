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

So tag values and attribute keys are first put in their stored form (model/stored_names.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import InvalidValue
from ..model.stored_names import CONTROL_CHARACTERS, stored_name

__all__ = [
    "check_span_list",
    "check_spans",
    "lp_field_key",
    "lp_field_string",
    "lp_measurement",
    "lp_tag_key",
    "lp_tag_value",
    "sql_identifier",
    "sql_like_containing",
    "sql_number",
    "sql_string",
    "sql_timestamp",
]

# --- SQL -------------------------------------------------------------------------------------------


def sql_string(value: str) -> str:
    """A SQL string literal: `'…'` with `'` doubled.

    NUL is refused (`InvalidValue`, a client fault): a C-string boundary anywhere between here and the
    storage engine could cut the literal short. Stored names hold no NUL (`stored_name`), so only a search
    for a string attribute value with a NUL ends here.
    """
    if "\0" in value:
        raise InvalidValue(f"cannot search for {value!r}: CnosDB's SQL cannot carry NUL (U+0000)")
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier: `"…"` with `"` doubled (quoting also keeps upper case, as CnosDB needs)."""
    if not name:
        raise ValueError("a SQL identifier cannot be empty")
    if "\0" in name:
        raise InvalidValue(f"cannot name {name!r}: CnosDB's SQL cannot carry NUL (U+0000)")
    return '"' + name.replace('"', '""') + '"'


def sql_like_containing(text: str) -> str:
    """A LIKE pattern literal matching any text that contains `text`: `'%…%'`, with `%` and `_` escaped.

    Without an ESCAPE clause (which CnosDB's DataFusion 27 does not plan), a backslash before `%` or `_`
    makes it literal in DataFusion 27 (arrow 42) and 55 alike; what a backslash before anything else means
    differs between them, so the text must hold none (an overflow fragment holds none: model/span_rows.py).
    """
    if "\\" in text:
        raise InvalidValue(f"no LIKE pattern common to CnosDB and cnosdb-lite matches {text!r}")
    return sql_string("%" + text.replace("%", "\\%").replace("_", "\\_") + "%")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1
_LAST_SPAN_NS = _NS_MAX - 1  # see check_spans


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


def check_spans(resource_spans: Iterable[Any]) -> None:
    """Refuses (`InvalidValue`, naming the span and field) a span this table cannot hold: IDs of other
    lengths than OTLP's (a row without a trace ID tag belongs to no trace), or a start, end or event time
    after the last one CnosDB stores, 2^63 - 2 ns (2262-04-11).

    The start is the line's timestamp and an event time may be written as BIGINT: CnosDB refuses the whole
    write over a value beyond i64. Not even i64::MAX itself can be stored: CnosDB's storage buckets are
    `[start, end)` with `end` saturated at i64::MAX, so no bucket holds it. An end beyond would make searches
    that add the duration to the start overflow. OTLP's fixed64 times are unsigned: no lower bound.
    """
    for rs in resource_spans:
        for ss in rs.scope_spans:
            check_span_list(ss.spans)


def check_span_list(spans: Iterable[Any]) -> None:
    """`check_spans` of spans in a list: OTLP spans, or anything with their fields (`trace_id`, `span_id`,
    `parent_span_id`, `name`, `start_time_unix_nano`, `end_time_unix_nano`, `links` and `events` with theirs),
    such as `model.jaeger_otlp.JaegerSpanView`."""
    for span in spans:
        if len(span.trace_id) != 16 or len(span.span_id) != 8 or len(span.parent_span_id) not in (0, 8):
            _refuse(span, "trace_id, span_id and parent_span_id must be 16, 8 and 0 or 8 bytes, got "
                          f"{len(span.trace_id)}, {len(span.span_id)} and {len(span.parent_span_id)}")
        for i, link in enumerate(span.links):
            if len(link.trace_id) != 16 or len(link.span_id) != 8:
                _refuse(span, f"links[{i}] trace_id and span_id must be 16 and 8 bytes, got "
                              f"{len(link.trace_id)} and {len(link.span_id)}")
        if span.start_time_unix_nano > _LAST_SPAN_NS:
            _refuse_time(span, "start_time_unix_nano", span.start_time_unix_nano)
        if span.end_time_unix_nano > _LAST_SPAN_NS:
            _refuse_time(span, "end_time_unix_nano", span.end_time_unix_nano)
        for i, event in enumerate(span.events):
            if event.time_unix_nano > _LAST_SPAN_NS:
                _refuse_time(span, f"events[{i}].time_unix_nano", event.time_unix_nano)


def _refuse_time(span: Any, field: str, ns: int) -> None:
    _refuse(span, f"{field} {ns} is after the last time CnosDB can store, {_LAST_SPAN_NS} ns "
                  "(2262-04-11T23:47:16.854775806Z)")


def _refuse(span: Any, what: str) -> None:
    raise InvalidValue(f"span {span.trace_id.hex()}/{span.span_id.hex()} ({span.name!r}): {what}")


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


# --- line protocol ---------------------------------------------------------------------------------

_LP_SEPARATORS = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})
_LP_NAME_SPECIAL = re.compile(rf"[\\\n\r, ={re.escape(CONTROL_CHARACTERS)}]")
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
    return _lp_name(value)


def lp_field_key(key: str) -> str:
    """A field key (column name, attribute keys included): the stored form, `,` space `=` escaped."""
    return _lp_name(key)


def _lp_name(name: str) -> str:
    """The stored form of a name with `,` space `=` escaped, which CnosDB's parser turns back into it."""
    if _LP_NAME_SPECIAL.search(name) is None:
        return name
    return stored_name(name).translate(_LP_SEPARATORS)


def lp_field_string(value: str) -> str:
    """A string field value: quoted, `\\` and `"` escaped; any other character is carried as itself."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    return '"' + value + '"'
