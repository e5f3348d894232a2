"""Line protocol to Arrow columns, fast: the write hot path.

A Python loop per field costs about 0.5 µs, so 30-field lines would top out near 50 k lines/s.  Instead:

0. Requests without escapes in which every slice of ~1,000 lines has a single shape (what writers of
   uniform rows send) are cut as a whole, with no per-line Python step at all; see `_uniform`.
0b. Requests of one table whose lines have many shapes (the plugin's spans: roots and children, events,
   different attributes), escapes allowed, are pivoted by key with Arrow kernels only; see `_mixed`. Their
   fixed cost is high, so a request of one line takes the path below.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import lp_exact
from .errors import CnosDBError, coordinator_common
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
# A single line has one shape, so cutting it as a group gives what `_mixed` gives, for a third of the cost (a span
# line of the plugin's: 0.44 ms against 1.2 ms). With more lines the order of rows and columns could differ.
_MIXED_MIN_LINES = 2
_BOOL_WORDS = frozenset(("t", "T", "f", "F", "true", "True", "TRUE", "false", "False", "FALSE"))
_BOOL_ARRAY = pa.array(sorted(_BOOL_WORDS), pa.string())
_TRUE_ARRAY = pa.array(sorted(w for w in _BOOL_WORDS if w[0] in "tT"), pa.string())
# Typed scalars: an untyped Python value makes pyarrow infer its type, which tries imports each call.
_NUL = pa.scalar("\x00", pa.string())
_ONE = pa.scalar(1, pa.int64())
_INDEX = [pa.scalar(i, pa.int64()) for i in range(3)]
_PLACEHOLDERS = "\x01\x02\x03\x04\x05\x06"
_NAME_TEXT = {"\x01": " ", "\x02": ",", "\x03": "=", "\x04": '\\"', "\x05": "\\\\", "\x06": "\\'"}
_STRING_TEXT = {"\x04": '"', "\x05": "\\", "\x06": "\\'"}
_ODD = pa.array([False, True] * 65536 + [False], pa.bool_())      # every second quote-split piece is a string
_ODD_QUOTES = object()

# A parsed column: (kind, values); by kind and path the values are a list or tuple of Python values, a
# pyarrow Array, or a placeholder (an ordinal, None) filled in later.
Column = tuple[str, Any]
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
        lines = text.count("\n", 0, len(text.rstrip("\n"))) + 1
        mixed = _mixed(text, default_time) if lines >= _MIXED_MIN_LINES else None
        if mixed is not None:
            return mixed
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
    cols: dict[str, Column] = {}
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


def _mixed(text: str, default_time: int) -> dict[str, LpTable] | None:
    """Requests of one table whose lines have many shapes (what the plugin sends): pivoted in Arrow.

    The text is cut into slices of about `_SLICE_LINES` lines (as in `_uniform`), each slice's escapes
    are lifted to placeholders as in `_cut` (with `str.split`, not a regex), and each slice is cut with
    Arrow kernels only (`_mixed_cut`): no Python step runs per line or per field.  None when this path
    cannot take the request (the general path then does); _Fallback for a type conflict.
    """
    if "\r" in text or "\x00" in text or "\t" in text or "\x0c" in text:
        return None
    escaped = "\\" in text
    if escaped and any(c in text for c in _PLACEHOLDERS):
        return None
    stop = len(text)
    while stop and text[stop - 1] == "\n":
        stop -= 1
    if not stop:
        return None
    lines = text.count("\n", 0, stop) + 1
    step = stop if lines <= _SLICE_LINES * 3 // 2 else stop * _SLICE_LINES // lines
    parts = []
    start = 0
    while start < stop:
        end = text.find("\n", start + step, stop)
        if end < 0 or stop - end < step // 2:
            end = stop
        while True:                                   # a cut inside a quoted string: take the next line too
            piece = text[start:end]
            if escaped:
                lifted = _lift_split(piece)
                if lifted is None:
                    return None
                piece = lifted
            part = _mixed_part(piece, default_time, escaped)
            if part is not _ODD_QUOTES:
                break
            if end >= stop:
                return None
            end = text.find("\n", end + 1, stop)
            if end < 0:
                end = stop
        if not isinstance(part, tuple):             # None: not this path's input
            return None
        parts.append(part)
        start = end + 1
    if len({table for table, _ in parts}) != 1:
        return None
    try:
        return {parts[0][0]: _assemble([part for _, part in parts])}
    except CnosDBError:
        raise _Fallback from None       # a type conflict: the exact path names the first one in the text


def _lift_split(text: str) -> str | None:
    """`_lift_escapes` with `str.split` on backslashes; None where `_lift_escapes` would fall back or
    leave a backslash (caller checked that no placeholder character is in the text)."""
    parts = text.split("\\")
    out = [parts[0]]
    i, n = 1, len(parts)
    while i < n:
        p = parts[i]
        if p:
            lifted = _ESCAPES.get(p[0])
            if lifted is None or lifted == "\x05":
                return None
            out.append(lifted)
            out.append(p[1:])
            i += 1
        elif i + 1 < n:                     # `\\`: the next part follows the escaped backslash
            out.append("\x05")
            out.append(parts[i + 1])
            i += 2
        else:                               # a backslash ends the text
            return None
    return "".join(out)


def _mixed_part(text: str, default_time: int, escaped: bool) -> tuple[str, tuple] | object | None:
    try:
        return _mixed_cut(text, default_time, escaped)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowIndexError):
        return None


def _mixed_cut(text: str, default_time: int, escaped: bool) -> tuple[str, tuple] | object | None:
    """One slice: lines `table[,k=v...] k=v[,k=v...][ time]` of one table, any tag and field keys.

    Quoted strings are lifted out, lines cut at spaces and commas, every `key=value` token split at its
    first `=`, and the keys dictionary-encoded (`_pivot`); tokens sorted by key then give each column as
    a zero-copy slice, scattered to its lines.  Checked as `_convert` checks a group (one kind per
    column, each key once per line and never both tag and field, strings exactly `key="..."`), so what
    is accepted here is what the exact parser gives; anything else gives None.  `_ODD_QUOTES` if the
    slice has an odd number of quotes (the caller may have cut inside a string).
    """
    pieces = pc.split_pattern(pa.array([text], pa.string()), '"').flatten()
    count = len(pieces)
    if count % 2 == 0:
        return _ODD_QUOTES
    k = count // 2
    if k:
        odd = _ODD.slice(0, count) if count <= len(_ODD) else pa.array([False, True] * k + [False], pa.bool_())
        strings = pieces.filter(odd)
        skeleton = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, k + 1], pa.int32()),
                                                           pieces.filter(pc.invert(odd))), _NUL)
    else:
        strings = pieces.slice(0, 0)
        skeleton = pieces
    lines = pc.split_pattern(skeleton, "\n").flatten()
    n = len(lines)
    sections = pc.split_pattern(lines, " ")
    lo, hi = pc.min_max(pc.list_value_length(sections)).values()
    width = lo.as_py()
    if width != hi.as_py() or width not in (2, 3):
        return None
    head_tokens = pc.split_pattern(pc.list_element(sections, _INDEX[0]), ",")
    tables = pc.unique(pc.list_element(head_tokens, _INDEX[0]))
    if len(tables) != 1:
        return None
    table = tables[0].as_py()
    if not table or table[0] == "#" or "=" in table or "\x00" in table:
        return None
    present = [c for c in _PLACEHOLDERS if c in text] if escaped else []
    if present and _PLACEHOLDER_RE.search(table):
        if "\x03" in table:                       # `\=` is not a measurement escape
            return None
        table = table.translate(_NAME_CHARS)
    tags = _pivot(pc.list_slice(head_tokens, 1), n)
    fields = _pivot(pc.split_pattern(pc.list_element(sections, _INDEX[1]), ","), n)
    if tags is None or fields is None or not fields[0]:
        return None
    tag_keys, tag_values, tag_order, tag_first = tags
    field_keys, field_values, field_order, field_first = fields
    if set(tag_keys) & set(field_keys):
        return None
    if present:
        tag_values = _unlift_tag_values(tag_values, present)
        strings = _unlift_strings(strings, present)
        if tag_values is None or strings is None:
            return None
    is_string = pc.equal(field_values, _NUL)
    if pc.sum(is_string).as_py() != k:
        return None                               # a quote elsewhere than as a whole field value
    rank = pc.subtract(pc.cumulative_sum(is_string.cast(pa.int64())), _ONE)
    cols: dict[str, Column] = {}
    order = []
    for keys, values, (ordered, offsets, sorted_parents), first, is_tag in (
            (tag_keys, tag_values, tag_order, tag_first, True),
            (field_keys, field_values, field_order, field_first, False)):
        sorted_values = values.take(ordered)
        sorted_ranks = None if is_tag else rank.take(ordered)
        for j, name in enumerate(keys):
            start, size = offsets[j], offsets[j + 1] - offsets[j]
            column = sorted_values.slice(start, size)
            if is_tag:
                kind, arr = TAG, column
            elif column[0].as_py() == "\x00":
                if not pc.all(pc.equal(column, _NUL)).as_py():
                    return None
                assert sorted_ranks is not None         # a field column (not is_tag)
                kind, arr = STRING, strings.take(sorted_ranks.slice(start, size))
            else:
                try:
                    kind, arr = _value_column(column)
                except _Fallback:
                    return None
            if size != n:
                arr = pc.scatter(arr, sorted_parents.slice(start, size), max_index=n - 1)
            if present and _PLACEHOLDER_RE.search(name):
                name = name.translate(_NAME_CHARS)
            cols[name] = (kind, arr)
            order.append((first[j][0], not is_tag, first[j][1], name))
    cols = {name: cols[name] for *_, name in sorted(order)}
    if width == 3:
        stamps = pc.list_element(sections, _INDEX[2])
        if not pc.all(pc.match_substring_regex(stamps, "^-?[0-9]+$")).as_py():
            return None
        times = pc.cast(stamps, pa.int64())
    else:
        times = [default_time] * n
    return table, (n, times, cols)


def _pivot(lists: pa.ListArray, n: int) -> tuple | None:
    """The `key=value` tokens of `n` lines as (keys in order of first use, values, (token order sorted by
    key, each key's offset in that order, the line of each sorted token), each key's first (line,
    token)); None if a token has no `=`, a key is empty, or a line has a key twice."""
    flat = lists.flatten()
    if not len(flat):
        return [], flat, (pa.array([], pa.int64()), [0], pa.array([], pa.int64())), []
    pairs = pc.split_pattern(flat, "=", max_splits=1)
    if pc.min(pc.list_value_length(pairs)).as_py() != 2:
        return None
    encoded = pc.list_element(pairs, _INDEX[0]).dictionary_encode()
    keys = encoded.dictionary.to_pylist()
    if not all(keys):
        return None
    ids = encoded.indices.cast(pa.int64())
    ordered = pc.sort_indices(ids)                # stable: each key's tokens stay in line order
    sorted_parents = pc.list_parent_indices(lists).cast(pa.int64()).take(ordered)
    line_keys = pc.add(pc.multiply(ids.take(ordered), pa.scalar(n, pa.int64())), sorted_parents)
    m = len(line_keys)
    if m > 1 and not pc.all(pc.greater(line_keys.slice(1), line_keys.slice(0, m - 1))).as_py():
        return None                               # a key twice in a line
    counts = pc.value_counts(ids)
    per_key = dict(zip(counts.field(0).to_pylist(), counts.field(1).to_pylist(), strict=True))
    offsets = [0]
    first = []
    for j in range(len(keys)):
        first.append((sorted_parents[offsets[-1]].as_py(), ordered[offsets[-1]].as_py()))
        offsets.append(offsets[-1] + per_key[j])
    return keys, pc.list_element(pairs, _INDEX[1]), (ordered, offsets, sorted_parents), first


def _unlift_tag_values(values: pa.Array, present: list[str]) -> pa.Array | None:
    """Tag values with their escapes put back as CnosDB's `escape()` does; None where it would error."""
    marked = None
    found = []
    for placeholder in present:
        hit = pc.match_substring(values, placeholder)
        if pc.any(hit).as_py():
            found.append(placeholder)
            marked = hit if marked is None else pc.or_(marked, hit)
    if marked is None:
        return values
    if pc.any(pc.and_(marked, pc.match_substring(values, "="))).as_py():
        return None                               # an unescaped `=` beside an escape: CnosDB errors
    for placeholder in found:
        values = pc.replace_substring(values, placeholder, _NAME_TEXT[placeholder])
    return values


def _unlift_strings(strings: pa.Array, present: list[str]) -> pa.Array | None:
    """String field values unescaped (`\\"`, `\\\\`); None if one holds an escape only names allow."""
    for placeholder in present:
        if len(strings) and pc.any(pc.match_substring(strings, placeholder)).as_py():
            if placeholder in "\x01\x02\x03":
                return None
            strings = pc.replace_substring(strings, placeholder, _STRING_TEXT[placeholder])
    return strings


def _value_column(values: pa.Array) -> Column:
    """A column of non-string field values (no keys): kind and Arrow array, as `_number_column`."""
    first = values[0].as_py()
    if not first:
        raise _Fallback
    if first[0] in "tTfF":
        if not pc.all(pc.is_in(values, value_set=_BOOL_ARRAY)).as_py():
            raise _Fallback
        return BOOL, pc.is_in(values, value_set=_TRUE_ARRAY)
    return _numbers(values, first)


def _numbers(values: pa.Array, first: str) -> Column:
    """Number field values (`1i`, `2u`, `3.5`), typed by the first one's suffix and checked all at once."""
    kind, regex, arrow_type = {"i": (I64, _INT_RE, pa.int64()), "u": (U64, _UINT_RE, pa.uint64())}.get(
        first[-1], (F64, _FLOAT_RE, pa.float64()))
    if not pc.all(pc.match_substring_regex(values, regex)).as_py():
        raise _Fallback
    if kind != F64:
        values = pc.utf8_slice_codeunits(values, 0, -1)
    try:
        return kind, pc.cast(values, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _Fallback from None


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


def _unlift_names(table: str, cols: dict[str, Column]) -> str:
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
    cols: dict[str, Column] = {}
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


def _number_column(name: str, items: Sequence[str]) -> Column:
    """A column of `name=value` items that are not strings: check the keys, then the values, in bulk."""
    p = len(name) + 1
    first = items[0][p:]
    if not first:
        raise _Fallback
    if first[0] in "tTfF":
        values = [v[p:] for v in items]
        if not set(values) <= _BOOL_WORDS or not all(v.startswith(name + "=") for v in items):
            raise _Fallback
        return BOOL, [v[0] in "tT" for v in values]
    arr = pa.array(items, pa.string())
    if not pc.all(pc.starts_with(arr, name + "=")).as_py():
        raise _Fallback
    return _numbers(pc.utf8_slice_codeunits(arr, p), first)


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


def _assemble(parts: list[tuple[int, list, dict[str, Column]]]) -> LpTable:
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
