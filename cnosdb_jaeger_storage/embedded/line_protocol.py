"""Line protocol to Arrow columns, fast: the write hot path.

A Python loop per field costs about 0.5 µs, so 30-field lines would top out near 50 k lines/s.  Instead:

0. Requests without escapes in which every slice of ~1,000 lines has a single shape (what writers of
   uniform rows send) are cut as a whole, with no per-line Python step at all; see `_uniform`.

Otherwise lines are grouped by shape and converted a column at a time:

1. Each line without a backslash, `\\r` or NUL is cut with `str` methods only: `partition(' ')` splits the
   series key from the fields; quoted strings are lifted out with `split('"')` and replaced by a NUL
   placeholder, so their commas and spaces cannot confuse the cuts; two C-level regexes check the shape
   and strip the values, giving a signature (measurement, tag keys, field keys, which fields are strings).
2. Lines with the same signature form a group; `zip(*rows)` transposes a group into columns, and numbers are
   checked and converted by pyarrow compute (regex + cast) per column.
3. Anything unusual (escapes, strings spanning lines, odd placements, conversion failures) is parsed by the
   exact state machine in `lp_exact.py`, which also produces CnosDB's error for a bad request (the
   whole request is re-parsed with it on any error, so the error named is the first one in the text).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from . import lp_exact
from .errors import coordinator_common
from .lp_exact import BOOL, F64, I64, STRING, TAG, U64, Line, LpError

ARROW_TYPES = {TAG: pa.string(), STRING: pa.string(), I64: pa.int64(), U64: pa.uint64(), F64: pa.float64(),
               BOOL: pa.bool_()}
_HEAD_RE = re.compile(r"[^,= \t\x0c]+(?:,[^,=]+=[^,]*)*")
_TAG_VALUE_RE = re.compile(r"=[^,]*")
# Escape pairs lifted to placeholders before cutting, and what they become in names and in strings.
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {" ": "\x01", ",": "\x02", "=": "\x03", '"': "\x04", "\\": "\x05", "'": "\x06"}
_PLACEHOLDER_RE = re.compile("[\x01-\x06]")
_NAME_ONLY_RE = re.compile("[\x01-\x03]")
_NAME_CHARS = str.maketrans({"\x01": " ", "\x02": ",", "\x03": "=", "\x04": '\\"', "\x05": "\\\\",
                             "\x06": "\\'"})
_STRING_CHARS = str.maketrans({"\x04": '"', "\x05": "\\", "\x06": "\\'"})
_TS_RE = re.compile(r"-?[0-9]+")
_FLOAT_RE = r"^[-+]?[0-9]+\.?[0-9]*([eE][-+]?[0-9]+)?$"
_INT_RE = r"^[-+]?[0-9]+i$"
_UINT_RE = r"^\+?[0-9]+u$"
_SLICE_LINES = 1000
_BOOL_WORDS = frozenset(("t", "T", "f", "F", "true", "True", "TRUE", "false", "False", "FALSE"))
_EXPECTED = {TAG: "string", STRING: "string", I64: "i64", U64: "u64", F64: "f64", BOOL: "bool"}


@dataclass
class LpTable:
    """The rows one request writes to one table: `time` (int64, request precision) plus typed columns."""

    kinds: dict[str, str]
    data: pa.Table


@dataclass
class _Group:
    heads: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    strings: list[list[str] | None] = field(default_factory=list)
    stamps: list[str] = field(default_factory=list)


class _Fallback(Exception):
    """The bulk path cannot take this group; parse its lines exactly."""


def parse(text: str, default_time: int) -> dict[str, LpTable]:
    """Parse a write request; raises CnosDBError (040004 for syntax, 050014 for in-request conflicts)."""
    try:
        return _parse(text, default_time)
    except LpError as err:  # noqa: F841 - rebound below
        try:
            _parse_all_exact(text, default_time)
        except LpError as first:
            err = first
        raise err.as_cnosdb(text) from None


def _parse_all_exact(text: str, default_time: int) -> list[Line]:
    lines, pos = [], 0
    while pos < len(text):
        line, pos = lp_exact.parse_one(text, pos, default_time)
        if line is not None:
            lines.append(line)
    return lines


def _parse(text: str, default_time: int) -> dict[str, LpTable]:
    try:
        uniform = _uniform(text, default_time)
        if uniform is not None:
            return uniform
        groups, escaped = _cut(text)
        parts: dict[str, list] = {}
        for key, g in groups.items():
            table, part = _convert(key, g, default_time, escaped)
            parts.setdefault(table, []).append(part)
    except _Fallback:
        parts = {}
        for table, part in _rows_to_parts(_parse_all_exact(text, default_time)):
            parts.setdefault(table, []).append(part)
    return {table: _assemble(ps) for table, ps in parts.items()}


def _uniform(text: str, default_time: int) -> dict[str, LpTable] | None:
    """Requests without escapes whose slices of about `_SLICE_LINES` lines each have one shape.

    Slicing keeps the temporary strings of a large request small enough to be reused from the
    allocator's free lists and the CPU cache (one pass over a 5,000-line request used to cost twice as
    much per line as over 500 lines).  Slices end at a newline outside quoted strings.
    """
    if "\\" in text or "\r" in text or "\x00" in text:
        return None
    parts: dict[str, list] = {}
    for piece in _slices(text):
        part = _uniform_part(piece, default_time)
        if part is None:
            return None
        parts.setdefault(part[0], []).append(part[1])
    return {table: _assemble(ps) for table, ps in parts.items()}


def _slices(text: str) -> list[str]:
    """`text` cut after newlines into pieces of about `_SLICE_LINES` lines, never inside a quote."""
    lines = text.count("\n") + 1
    if lines <= _SLICE_LINES * 3 // 2:
        return [text]
    step = len(text) * _SLICE_LINES // lines
    out, start = [], 0
    while start < len(text):
        end = text.find("\n", start + step)
        while end >= 0 and text.count('"', start, end) % 2:
            end = text.find("\n", end + 1)
        if end < 0 or len(text) - end < step // 2:
            out.append(text[start:])
            break
        out.append(text[start:end])
        start = end + 1
    return out


def _uniform_part(text: str, default_time: int) -> tuple[str, tuple] | None:
    """The common case in bulk: every line has the shape of the first one; None if not (or unsure).

    Shape = measurement, tag keys, field keys and which fields are strings, and whether a timestamp
    follows, with single spaces between sections and no escapes.  Instead of cutting each line, the
    whole text is cut at once: quoted strings are lifted out (`split('"')`), the rest is split on spaces
    and commas, and the flat token lists are sliced into columns (`tokens[j::width]`).  Per-line
    separator counts, checked with Arrow, guarantee that every line yields the same number of tokens in
    each section, so the slices line up; then each column is checked as `_convert` checks it (same
    placeholders, same `_number_column`), so anything accepted here gives the same table as `_cut` +
    `_convert` would.  Everything else returns None and takes the general path.
    """
    pieces = text.split('"')
    if len(pieces) % 2 == 0:
        return None
    strings = pieces[1::2]
    skeleton = "\x00".join(pieces[::2]) if strings else text
    skeleton = skeleton.rstrip("\n")
    first = skeleton.partition("\n")[0]
    sections = first.split(" ")
    width = len(sections)
    if width not in (2, 3) or not skeleton:
        return None
    lines = skeleton.split("\n")
    n = len(lines)
    if n > 1 and set(map(str.count, lines, itertools.repeat(" ", n))) != {width - 1}:
        return None
    tokens = skeleton.replace("\n", " ").split(" ")
    if len(tokens) != n * width:
        return None
    head, fields_s = sections[0], sections[1]
    table, *tag_tokens = head.split(",")
    if not table or "=" in table or "\t" in table or "\x0c" in table or "\x00" in head or not fields_s:
        return None
    tag_keys = [t.partition("=")[0] for t in tag_tokens]
    field_keys = [f.partition("=")[0] for f in fields_s.split(",")]
    if any("=" not in t for t in tag_tokens) or not all(tag_keys) or not all(field_keys) \
            or len(set(tag_keys)) != len(tag_keys) or len(set(field_keys)) != len(field_keys) \
            or set(tag_keys) & set(field_keys):
        return None
    cols: dict[str, tuple[str, object]] = {}
    heads = tokens[0::width]
    if tag_keys:
        flat = _split_aligned(heads, len(tag_keys) + 1)
        if flat is None or flat[0::len(tag_keys) + 1].count(table) != n:
            return None
        for j, tag in enumerate(tag_keys, 1):
            arr = pa.array(flat[j::len(tag_keys) + 1], pa.string())
            if not pc.all(pc.starts_with(arr, tag + "=")).as_py():
                return None
            cols[tag] = (TAG, pc.utf8_slice_codeunits(arr, len(tag) + 1))
    elif heads.count(table) != n:
        return None
    flat = _split_aligned(tokens[1::width], len(field_keys))
    if flat is None:
        return None
    k = 0
    numbers = []
    for j, name in enumerate(field_keys):
        column = flat[j::len(field_keys)]
        placeholder = name + "=\x00"
        if column[0] == placeholder:
            if column.count(placeholder) != n:
                return None
            cols[name] = (STRING, k)
            k += 1
        else:
            numbers.append((name, column))
            cols[name] = (F64, None)
    if len(strings) != n * k:
        return None
    for name, (kind, ordinal) in cols.items():
        if kind == STRING:
            cols[name] = (STRING, strings[ordinal::k])
    try:
        for name, column in numbers:
            cols[name] = _number_column(name, column)
    except _Fallback:
        return None
    if width == 3:
        stamps = pa.array(tokens[2::width], pa.string())
        if not pc.all(pc.match_substring_regex(stamps, "^-?[0-9]+$")).as_py():
            return None
        try:
            times = pc.cast(stamps, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    else:
        times = [default_time] * n
    return table, (n, times, cols)


def _split_aligned(items: list[str], width: int) -> list[str] | None:
    """`items` each split on `,` into exactly `width` parts, flattened; None if any count differs."""
    if set(map(str.count, items, itertools.repeat(",", len(items)))) != {width - 1}:
        return None
    flat = ",".join(items).split(",")
    return flat if len(flat) == len(items) * width else None


def _lift_escapes(text: str) -> str:
    """Replace each escape pair by a placeholder so that plain `str` cuts can be used; see module doc."""
    if _PLACEHOLDER_RE.search(text):
        raise _Fallback
    try:
        return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(1)], text)
    except KeyError:
        raise _Fallback from None


def _cut(text: str) -> tuple[dict[tuple[str, int, int], _Group], bool]:
    """Step 1: lift strings out of the whole text, cut every line, and group the lines by shape."""
    escaped = "\\" in text
    if escaped:
        text = _lift_escapes(text)
    if "\r" in text:
        raise _Fallback
    pieces = text.split('"')
    if len(pieces) % 2 == 0:
        raise _Fallback
    strings = pieces[1::2]
    skeleton = "\x00".join(pieces[::2]) if strings else text
    groups: dict[tuple[str, int, int], _Group] = {}
    sub = _TAG_VALUE_RE.sub
    off = 0
    for line in skeleton.split("\n"):
        if not line:
            continue
        if line[0] in " \t\x0c":
            line = line.lstrip(" \t\x0c")
            if not line:
                continue
        k = line.count("\x00") if strings else 0
        if line[0] == "#":
            if k:
                raise _Fallback
            continue
        head, sp, rest = line.partition(" ")
        if not sp or "\x00" in head or (head.count("=") != head.count(",") and not _HEAD_RE.fullmatch(head)):
            raise _Fallback
        if rest[:1] == " ":
            rest = rest.lstrip(" ")
        fields_s, sp, stamp = rest.partition(" ")
        if sp:
            stamp = stamp.lstrip(" ")
            if " " in stamp or "\x00" in stamp:
                raise _Fallback
        if not fields_s:
            raise _Fallback
        key = (sub("", head), fields_s.count(","), k)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group()
        g.heads.append(head)
        g.fields.append(fields_s)
        g.stamps.append(stamp)
        if k:
            g.strings.append(strings[off:off + k])
            off += k
    return groups, escaped


def _unlift_names(table: str, cols: dict[str, tuple[str, object]]) -> str:
    """Put escaped characters back: names and tag values as CnosDB's `escape()`, strings as its unescape."""
    if _PLACEHOLDER_RE.search(table):
        if "\x03" in table:                       # `\=` is not a measurement escape
            raise _Fallback
        table = table.translate(_NAME_CHARS)
    for name in list(cols):
        kind, values = cols[name]
        if kind in (TAG, STRING):
            joined = "\n".join(values)
            if _PLACEHOLDER_RE.search(joined):
                if kind == STRING and _NAME_ONLY_RE.search(joined):
                    raise _Fallback
                if kind == TAG and "=" in joined:      # an unescaped `=` beside an escape: CnosDB errors
                    raise _Fallback
                chars = _NAME_CHARS if kind == TAG else _STRING_CHARS
                cols[name] = (kind, [v.translate(chars) for v in values])
        if _PLACEHOLDER_RE.search(name):
            cols[name.translate(_NAME_CHARS)] = cols.pop(name)
    return table


def _convert(key: tuple[str, int, int], g: _Group, default_time: int, escaped: bool) -> tuple[str, tuple]:
    """Step 2: one group to columns; raises _Fallback when any value needs the exact parser."""
    n = len(g.heads)
    table, *tag_keys = key[0].split(",")
    field_cols = list(zip(*[f.split(",") for f in g.fields], strict=True))
    field_keys = [c[0].partition("=")[0] for c in field_cols]
    if len(set(tag_keys)) != len(tag_keys) or len(set(field_keys)) != len(field_keys) \
            or set(tag_keys) & set(field_keys) or not all(field_keys) or not table:
        raise _Fallback
    cols: dict[str, tuple[str, object]] = {}
    if tag_keys:
        tag_cols = list(zip(*[h.split(",") for h in g.heads], strict=True))
        for j, tag in enumerate(tag_keys, 1):
            p = len(tag) + 1
            cols[tag] = (TAG, [v[p:] for v in tag_cols[j]])
    string_cols = list(zip(*g.strings, strict=True)) if key[2] else []
    ordinal = 0
    for column, name in zip(field_cols, field_keys, strict=True):
        placeholder = name + "=\x00"
        if column[0] == placeholder:
            if column.count(placeholder) != n or ordinal >= len(string_cols):
                raise _Fallback
            cols[name] = (STRING, string_cols[ordinal])
            ordinal += 1
        else:
            cols[name] = _number_column(name, column)
    if ordinal != key[2]:
        raise _Fallback
    if escaped:
        table = _unlift_names(table, cols)
    if any(g.stamps):
        if not all(_TS_RE.fullmatch(t) for t in g.stamps if t):
            raise _Fallback
        times = [int(t) if t else default_time for t in g.stamps]
        if max(times) >= 2**63 or min(times) < -(2**63):
            raise _Fallback
    else:
        times = [default_time] * n
    return table, (n, times, cols)


def _number_column(name: str, items: tuple[str, ...]) -> tuple[str, object]:
    """A column of `name=value` items that are not strings: check the keys, then the values, in bulk."""
    p = len(name) + 1
    first = items[0][p:]
    if not first:
        raise _Fallback
    if first[0] in "tTfF":
        values = [v[p:] for v in items]
        if not set(values) <= _BOOL_WORDS or not all(v.startswith(name) for v in items):
            raise _Fallback
        return BOOL, [v[0] in "tT" for v in values]
    kind, regex, arrow_type = {"i": (I64, _INT_RE, pa.int64()), "u": (U64, _UINT_RE, pa.uint64())}.get(
        first[-1], (F64, _FLOAT_RE, pa.float64()))
    arr = pa.array(items, pa.string())
    if not pc.all(pc.starts_with(arr, name + "=")).as_py():
        raise _Fallback
    arr = pc.utf8_slice_codeunits(arr, p)
    if not pc.all(pc.match_substring_regex(arr, regex)).as_py():
        raise _Fallback
    if kind != F64:
        arr = pc.utf8_slice_codeunits(arr, 0, -1)
    try:
        return kind, pc.cast(arr, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _Fallback from None


def _rows_to_parts(lines: list[Line]) -> list[tuple[str, tuple]]:
    """Exactly parsed lines to one column part per table."""
    by_table: dict[str, list[Line]] = {}
    for line in lines:
        if not line.fields:
            raise LpError("invalid line protocol syntax")
        by_table.setdefault(line.table, []).append(line)
    out = []
    for table, rows in by_table.items():
        cols: dict[str, tuple[str, list]] = {}
        for i, line in enumerate(rows):
            for key, kind, value in [(k, TAG, v) for k, v in line.tags] + line.fields:
                col = cols.get(key)
                if col is None:
                    col = cols[key] = (kind, [None] * len(rows))
                elif col[0] != kind:
                    raise coordinator_common(f"line to batch error: Expected {_EXPECTED[kind]} column")
                col[1][i] = value
        out.append((table, (len(rows), [r.timestamp for r in rows], cols)))
    return out


def _assemble(parts: list[tuple[int, list, dict[str, tuple[str, object]]]]) -> LpTable:
    """Step 3: the parts of one table into one Arrow table, rejecting columns written with two kinds."""
    kinds: dict[str, str] = {}
    tables = []
    for _n, times, cols in parts:
        arrays = [times if isinstance(times, pa.Array) else pa.array(times, pa.int64())]
        names = ["time"]
        for name, (kind, values) in cols.items():
            known = kinds.setdefault(name, kind)
            if known != kind:
                raise coordinator_common(f"line to batch error: Expected {_EXPECTED[kind]} column")
            arrays.append(values if isinstance(values, pa.Array) else pa.array(values, ARROW_TYPES[kind]))
            names.append(name)
        tables.append(pa.Table.from_arrays(arrays, names=names))
    data = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    return LpTable(kinds, data)
