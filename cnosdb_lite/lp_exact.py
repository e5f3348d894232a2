"""CnosDB's line-protocol state machine, one line at a time: the reference semantics.

This mirrors the behaviour of CnosDB v2.4.3's `line_protocol::parser::Parser` (read from its source; the code
here is our own): which escapes each position accepts, that `\\,` `\\ ` `\\=` lose their backslash while
`\\\\`, `\\"`, `\\'` stay verbatim in names, that string field values unescape only `\\"` and `\\\\`, that
quoted strings may hold raw newlines, and the error texts with their byte positions.  It is slow (a Python
loop per character), so `line_protocol.py` only falls back to it for lines its bulk path cannot take: lines
with a backslash, a quote spanning lines, or anything unusual, and to produce the exact error of a bad line.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from .errors import CnosDBError, parse_line_protocol

_WS = " \t\n\r\x0c"
_NAME_ESCAPES = ", \\\"'"          # after `\` in a measurement
_KEY_ESCAPES = ", =\\\"'"          # after `\` in tag keys/values and field keys
_VALUE_ESCAPES = "'\"\\"            # after `\` in a field value
_INT_PREFIX = re.compile(r"-?[0-9]+")
_BOOLS = frozenset(("true", "True", "TRUE", "false", "False", "FALSE"))
_I64 = (-(2**63), 2**63 - 1)

# Value kinds as CnosDB names them in its schema errors.
I64, U64, F64, BOOL, STRING, TAG = "I64", "U64", "F64", "BOOL", "STRING", "TAG"


@dataclass
class Line:
    """One parsed point; tags and fields sorted by key, first occurrence of a key kept."""

    table: str
    tags: list[tuple[str, str]]
    fields: list[tuple[str, str, object]]      # (key, kind, value)
    timestamp: int


class LpError(Exception):
    """A parser error; `pos` is a character index that `as_cnosdb` converts to CnosDB's byte offset."""

    def __init__(self, template: str, pos: int | None = None) -> None:
        super().__init__(template)
        self.template = template
        self.pos = pos

    def as_cnosdb(self, text: str, base: int = 0) -> CnosDBError:
        msg = self.template
        if self.pos is not None:
            msg = msg.replace("{pos}", str(len(text[:base + self.pos].encode())))
        return parse_line_protocol(msg)


def _unexpected_end(pos: int) -> LpError:
    return LpError("unexpect end line start at '{pos}'", pos)


def _unexpected_token(c: str, pos: int) -> LpError:
    return LpError(f"unexpect token '{c}' at {{pos}}", pos)


def _bad_value(content: str) -> LpError:
    return LpError(f"invalid field value: '{content}'")


def unescape_name(s: str, need: bool) -> str:
    """CnosDB's `escape()`: drop the backslash before `,` space `=`; those three must be escaped."""
    if not need:
        return s
    out = []
    for a, b in itertools.pairwise(s):
        if b in ", =":
            if a != "\\":
                raise LpError("invalid line protocol syntax")
            continue
        out.append(a)
    out.append(s[-1])
    return "".join(out)


def _unescape_string(buf: str, need: bool) -> str:
    if not need or not buf:
        return buf
    out = []
    pending = False
    for a, b in itertools.pairwise(buf):
        if a == "\\" and b in '"\\':
            if pending and b == '"':
                raise _bad_value(buf)
            if not pending:
                pending = True
                continue
        out.append(a)
        pending = False
    out.append(buf[-1])
    return "".join(out)


def field_value(buf: str, need: bool) -> tuple[str, object]:
    """(kind, value) of one field value's text; CnosDB's `parse_field_value`."""
    if not buf:
        raise _bad_value(buf)
    c = buf[0]
    if c in "tTfF":
        if len(buf) == 1 or buf in _BOOLS:
            return BOOL, c in "tT"
        raise _bad_value(buf)
    if c == '"':
        if len(buf) < 2 or buf[-1] != '"':
            raise _bad_value(buf)
        return STRING, _unescape_string(buf[1:-1], need)
    if c in "+-0123456789":
        return number_value(buf)
    raise _bad_value(buf)


def number_value(buf: str) -> tuple[str, object]:
    """A numeric field value: `i` suffix BIGINT, `u` suffix BIGINT UNSIGNED, anything else DOUBLE."""
    last = buf[-1]
    body = buf[:-1] if last in "iu" else buf
    if not body.isascii() or "_" in body or body != body.strip():
        raise _bad_value(buf)
    try:
        if last == "i":
            v = int(body)
            if not _I64[0] <= v <= _I64[1]:
                raise ValueError
            return I64, v
        if last == "u":
            if not body.isdigit() or int(body) >= 2**64:
                raise ValueError
            return U64, int(body)
        return F64, float(body)
    except ValueError:
        raise _bad_value(buf) from None


def parse_timestamp(s: str) -> int | None:
    """atoi of an i64 (optional `-`), None if invalid."""
    digits = s[1:] if s[:1] == "-" else s
    if not digits.isascii() or not digits.isdigit():
        return None
    v = int(s)
    return v if _I64[0] <= v <= _I64[1] else None


def _scan_name(data: str, i: int, escapes: str, stops: str, start: int) -> tuple[int, bool]:
    """From `i`, the index of the first unescaped character of `stops`, and whether an escape was seen.

    After a backslash only a character of `escapes` may follow; the end of input is an error reported at
    `start`, as CnosDB reports it at the start of the token being read.
    """
    n = len(data)
    esc = has_esc = False
    while True:
        if i >= n:
            raise _unexpected_end(start)
        c = data[i]
        if esc:
            if c not in escapes:
                raise _unexpected_token(c, i)
            esc = False
        elif c == "\\":
            esc = has_esc = True
        elif c in stops:
            return i, has_esc
        i += 1


def parse_one(data: str, i: int, default_time: int) -> tuple[Line | None, int]:
    """Parse the line starting at `i` (after whitespace/comments); returns (line or None at end, next index)."""
    n = len(data)
    while i < n:                                    # LineBegin
        c = data[i]
        if c in _WS:
            i += 1
        elif c == "#":
            while i < n and data[i] not in "\r\n":
                i += 1
            i += 1
        else:
            break
    if i >= n:
        return None, n
    key_start = i
    i, has_esc = _scan_name(data, i, _NAME_ESCAPES, ", ", key_start)   # Table
    table = unescape_name(data[key_start:i], has_esc)
    tags: list[tuple[str, str]] = []
    if data[i] == ",":
        i += 1
        while True:
            key_start = i
            i, has_esc = _scan_name(data, i, _KEY_ESCAPES, "=", key_start)         # TagKey
            key = unescape_name(data[key_start:i], has_esc)
            i += 1
            val_start = i
            i, val_esc = _scan_name(data, i, _KEY_ESCAPES, ", ", key_start)      # TagValue
            tags.append((key, unescape_name(data[val_start:i], val_esc)))
            if data[i] == " ":
                break
            i += 1
    while i < n and data[i] == " ":
        i += 1
    if i >= n:
        raise _unexpected_end(key_start)
    fields: list[tuple[str, str, object]] = []
    timestamp = default_time
    while True:
        key_start = i
        i, has_esc = _scan_name(data, i, _KEY_ESCAPES, "=", key_start)             # FieldKey
        key = unescape_name(data[key_start:i], has_esc)
        i += 1
        val_start, esc, val_esc, quoted = i, False, False, False
        while i < n:                                # FieldValue
            c = data[i]
            if esc:
                if c not in _VALUE_ESCAPES:
                    raise _unexpected_token(c, i)
                esc = False
            elif c == '"':
                quoted = not quoted
            elif c == "\\":
                esc = val_esc = True
            elif not quoted and c in ", \r\n":
                break
            i += 1
        if i >= n:
            if quoted:
                raise _unexpected_end(val_start)
            if i > val_start:
                fields.append((key, *field_value(data[val_start:i], val_esc)))
            return _finish(table, tags, fields, timestamp), n
        fields.append((key, *field_value(data[val_start:i], val_esc)))
        c = data[i]
        i += 1
        if c == ",":
            continue
        if c in "\r\n":
            return _finish(table, tags, fields, timestamp), i
        break
    while i < n and data[i] == " ":
        i += 1
    ts_start = i
    while i < n and data[i] not in _WS:             # Timestamp
        i += 1
    if i > ts_start:
        text = data[ts_start:i]
        if i >= n:                                  # at the end CnosDB parses the longest integer prefix
            m = _INT_PREFIX.match(text)
            text = m.group() if m else ""
        ts = parse_timestamp(text)
        if ts is None:
            raise LpError("fail to parse timestamp at {pos}", i if i < n else ts_start)
        timestamp = ts
    return _finish(table, tags, fields, timestamp), i + 1


def _finish(table: str, tags: list, fields: list, timestamp: int) -> Line:
    return Line(table, _sort_dedup(tags), _sort_dedup(fields), timestamp)


def _sort_dedup(items: list) -> list:
    if len(items) < 2:
        return items
    items = sorted(items, key=lambda kv: kv[0])     # stable: the first of equal keys stays first
    out = [items[0]]
    for item in items[1:]:
        if item[0] != out[-1][0]:
            out.append(item)
    return out
