"""The stored form of tag values and attribute keys: what line protocol cannot carry, encoded.

CnosDB's line protocol cannot carry every character in a tag value or a name (cnosdb/quoting.py), so
tag values and attribute keys are stored in an encoding of their own (docs/schema.md, "Names and
values that line protocol cannot carry"): `\\` → `\\\\`, newline → `\\'`, carriage return → `\\"`, any
other control character but tab → `\\\\xNN` (two lowercase hex digits), and a backslash that would be
read as the start of such an escape (one followed by `x` and the digits of an escaped character) →
`\\\\x5c`. Every backslash of the stored form is then followed by a character CnosDB keeps verbatim, the
stored form holds no control character (a NUL in a name breaks every read of the table), and it
decodes back exactly (`decode_stored_name`). Names with none of these characters are stored as they are,
and every name stored before the `\\\\xNN` escapes existed (no control character, no `\\xNN` text) keeps
its stored form.
"""

from __future__ import annotations

import re

# Control characters stored as `\\xNN`: C0 and DEL, except tab (stored as itself, as it always was)
# and newline and carriage return (which have escapes of their own).
_HEX_ESCAPED = frozenset([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
CONTROL_CHARACTERS = "".join(map(chr, sorted(_HEX_ESCAPED)))
# `x` and the hex digits of an escaped character, the backslash itself (5c) included.
_HEX_DIGITS = "|".join(f"{c:02x}" for c in sorted(_HEX_ESCAPED | {0x5C}))
_NEEDS_STORE = re.compile(rf"[\\\n\r{re.escape(CONTROL_CHARACTERS)}]")
_STORE = re.compile(rf"(\\(?=x(?:{_HEX_DIGITS})))|[\\\n\r{re.escape(CONTROL_CHARACTERS)}]")
_STORED = {"\\": "\\\\", "\n": "\\'", "\r": '\\"'}
_STORED_ESCAPE = re.compile(rf"\\\\x({_HEX_DIGITS})|\\([\\'\"])")
_UNSTORE = {"\\": "\\", "'": "\n", '"': "\r"}


def _store_one(match: re.Match[str]) -> str:
    if match.group(1):  # a backslash the reader would take for an escape
        return "\\\\x5c"
    char = match.group()
    return _STORED.get(char) or f"\\\\x{ord(char):02x}"


def stored_name(value: str) -> str:
    """How a tag value or attribute key looks in the database (and so in SQL literals and column names)."""
    if _NEEDS_STORE.search(value) is None:
        return value
    return _STORE.sub(_store_one, value)


def _unstore_one(match: re.Match[str]) -> str:
    hex_digits = match.group(1)
    return chr(int(hex_digits, 16)) if hex_digits else _UNSTORE[match.group(2)]


def decode_stored_name(stored: str) -> str:
    """The exact inverse of `stored_name`.

    Text that `stored_name` cannot have produced (a lone or trailing backslash, or one before any other
    character, as in tag values CnosDB's own trace writer JSON-escapes) keeps its backslashes verbatim.
    """
    if "\\" not in stored:
        return stored
    return _STORED_ESCAPE.sub(_unstore_one, stored)
