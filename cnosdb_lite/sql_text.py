"""A small SQL tokenizer: enough to count statements and to parse CnosDB's own statements.

DataFusion parses the queries themselves; this only needs to know where statements end (`;` outside quotes
and comments) and to read CnosDB's DDL, whose grammar DataFusion does not have.  Unquoted identifiers are
lower-cased as CnosDB's `normalize_ident` does; `"quoted"` ones keep every character (`""` is a quote).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn, cast

from .errors import multi_statement, sql_parser

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)
  | (?P<word>[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)
  | (?P<op><>|!=|>=|<=|\|\||::|[-+*/%(),.;=<>~!@#^&|\[\]{}:?])
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class Token:
    kind: str          # word, qident, string, number, op
    text: str          # raw text
    value: str         # identifier (normalised) / string contents / upper-case keyword
    start: int
    end: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "word" and self.value.upper() in words


def tokenize(sql: str) -> list[Token]:
    tokens = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN_RE.match(sql, pos)
        if m is None:
            raise sql_parser(f"Unexpected character {sql[pos]!r} at position {pos}")
        kind = cast(str, m.lastgroup)  # every alternative of _TOKEN_RE is a named group
        text = m.group()
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "qident":
            value = text[1:-1].replace('""', '"')
        elif kind == "string":
            value = text[1:-1].replace("''", "'")
        elif kind == "word":
            value = text.lower()
        else:
            value = text
        tokens.append(Token(kind, text, value, m.start(), m.end()))
    if sql[pos:].strip():
        raise sql_parser("Unterminated string or identifier")
    return tokens


def single_statement(sql: str) -> list[Token]:
    """The tokens of the one statement in `sql` (trailing `;` allowed); CnosDB's MultiStatement error else."""
    tokens = tokenize(sql)
    statements: list[list[Token]] = [[]]
    for t in tokens:
        if t.kind == "op" and t.text == ";":
            statements.append([])
        else:
            statements[-1].append(t)
    non_empty = [s for s in statements if s]
    if len(non_empty) > 1:
        raise multi_statement(len(non_empty), sql)
    return non_empty[0] if non_empty else []


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Cursor:
    """Sequential reader over a statement's tokens with sqlparser-style errors."""

    def __init__(self, tokens: list[Token], sql: str) -> None:
        self.tokens = tokens
        self.sql = sql
        self.i = 0

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def next(self) -> Token:
        t = self.peek()
        if t is None:
            raise sql_parser("Expected more tokens, found: EOF")
        self.i += 1
        return t

    def kw(self, *words: str) -> bool:
        """Consume the keyword sequence if it is next."""
        for k, w in enumerate(words):
            t = self.peek(k)
            if t is None or not t.is_kw(w):
                return False
        self.i += len(words)
        return True

    def expect_kw(self, *words: str) -> None:
        if not self.kw(*words):
            self.fail(" ".join(words))

    def op(self, text: str) -> bool:
        t = self.peek()
        if t is not None and t.kind == "op" and t.text == text:
            self.i += 1
            return True
        return False

    def expect_op(self, text: str) -> None:
        if not self.op(text):
            self.fail(text)

    def ident(self) -> str:
        t = self.peek()
        if t is None or t.kind not in ("word", "qident"):
            self.fail("identifier")
        self.i += 1
        return t.value

    def object_name(self) -> str:
        """`a`, `db.a` or `tenant.db.a`: the last part (the statement runs in the request's database)."""
        name = self.ident()
        while self.op("."):
            name = self.ident()
        return name

    def fail(self, expected: str) -> NoReturn:
        t = self.peek()
        raise sql_parser(f"Expected {expected}, found: {t.text if t else 'EOF'}")

    def expect_end(self) -> None:
        if not self.at_end():
            self.fail("end of statement")

    def rest_text(self) -> str:
        t = self.peek()
        return self.sql[t.start:self.tokens[-1].end] if t else ""
