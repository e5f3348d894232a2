"""Quirks mode: CnosDB's wrong answers for exact-pushed field comparisons on rows older than the column.

CnosDB v2.4.3 pushes `<column> <op> <literal>` conjuncts (see `pushdown`) down as exact filters; its
storage skips a filter whose column is missing from a chunk's schema and then fills the column with NULL,
so every row stored before that field column existed matches such a conjunct (measured on CnosDB v2.4.3: `f = 'POST'`
returns all rows written before `f` was created).  Rows of the write that created the column, tag and time
columns, and every other conjunct shape (`<>`, NOT, OR, LIKE, functions, IS NOT NULL) are filtered
correctly.  After a restart all stored rows count as having every column that existed at start-up.

cnosdb-lite reproduces this by rewriting each such conjunct `c` on a field column into
`(c OR <row written before the column existed>)`, using the hidden per-row write number (`WRITE_COL`) and
the column's `born` write number kept by `Table` in memory only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .pushdown import ColumnRef, Select, exact_pushdown, resolve, selects
from .sql_text import Token, quote_ident
from .table import TAG, TIME, WRITE_COL, Table

ENV = "CNOSDB_LITE_QUIRKS"


def from_env() -> bool:
    """Quirks mode as `CNOSDB_LITE_QUIRKS` asks (`1`/`true`/`yes`/`on`), off when unset."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


Edit = tuple[int, int, str]      # replace sql[start:end] by the text


def rewrite(sql: str, tokens: list[Token], tables: Mapping[str, Table]) -> str:
    """`sql` with every exact-pushed comparison on a field column made true for rows that lack it."""
    return apply(sql, edits(sql, tokens, tables))


def edits(sql: str, tokens: list[Token], tables: Mapping[str, Table]) -> list[Edit]:
    """The edits `rewrite` makes (non-overlapping, so they combine with others')."""
    out = []
    for select in selects(tokens):
        for conjunct in select.where:
            column = exact_pushdown(conjunct)
            if column is None:
                continue
            lacks = _lacks(select, column, tables)
            if lacks is not None:
                out.append((conjunct.start, conjunct.end, f"({sql[conjunct.start:conjunct.end]} OR {lacks})"))
    return out


def apply(sql: str, changes: list[Edit]) -> str:
    for start, end, text in sorted(changes, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql


def _lacks(select: Select, column: ColumnRef, tables: Mapping[str, Table]) -> str | None:
    found = resolve(select, column, tables)
    if found is None:
        return None
    ref, table = found
    kind = table.columns.get(column.name)
    born = table.born.get(column.name, 0)
    if kind in (None, TAG, TIME) or born == 0:
        return None
    qualified = quote_ident(ref.qualifier) + "." if len(select.tables) > 1 or column.qualifier else ""
    return f"coalesce({qualified}{quote_ident(WRITE_COL)}, 0) < {born}"
