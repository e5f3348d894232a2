"""SHOW TAG VALUES and SHOW SERIES, planned as CnosDB plans them (`show_tag_value_projections`,
`show_series_projection` in its `sql/planner.rs`) and run as SQL on the table.

- The WHERE clause may use tag columns and `time`; a field column fails with `ShowSeriesWhereContainsField`
  (010046), an unknown column with DataFusion's schema error.
- SHOW TAG VALUES: for every tag the key selects (in table order), the distinct non-null `(key, value)`
  pairs of the rows that match; CnosDB unions them with DISTINCT and no order, so without an ORDER BY
  cnosdb-lite sorts by key, value (deterministic, and what clients of CnosDB must not rely on anyway).
- SHOW SERIES: one `key` per series, `table,tag1=v1,tag2=v2` with null tags left out (sorted by key unless
  ordered).
"""

from __future__ import annotations

import pyarrow as pa

from .ddl import ShowTags
from .errors import show_series_where_contains_field
from .sql_text import quote_ident
from .table import TAG, TIME, Table


def check_where(cmd: ShowTags, table: Table) -> None:
    for token in cmd.where:
        kind = table.columns.get(token.value) if token.kind in ("word", "qident") else None
        if kind is not None and kind not in (TAG, TIME):
            raise show_series_where_contains_field(token.value)


def selected_tags(cmd: ShowTags, table: Table) -> list[str]:
    tags = table.tags()
    if cmd.keys is None:
        return tags
    op, names = cmd.keys
    if op == "=" or op == "IN":
        return [t for t in tags if t in names]
    return [t for t in tags if t not in names]


def to_sql(cmd: ShowTags, table: Table, where_text: str) -> str | None:
    """The statement as SQL over `table`; None when it selects no tag (CnosDB's empty relation)."""
    where = f" WHERE {where_text}" if where_text else ""
    name = quote_ident(table.name)
    if cmd.keys is None:
        parts = ", ".join(f"CASE WHEN {quote_ident(t)} IS NULL THEN NULL ELSE {_lit(t + '=')} || {quote_ident(t)} END"
                          for t in table.tags())
        key = f"concat_ws(',', {_lit(table.name)}{', ' + parts if parts else ''})"
        inner = f"SELECT DISTINCT {key} AS key FROM {name}{where}"
        return f"SELECT key FROM ({inner}) {_ordered(cmd.tail, 'key')}"
    tags = selected_tags(cmd, table)
    if not tags:
        return None
    branches = " UNION ALL ".join(f"SELECT {_lit(t)} AS key, {quote_ident(t)} AS value FROM {name}{where}"
                                  for t in tags)
    inner = f"SELECT DISTINCT key, value FROM ({branches}) WHERE value IS NOT NULL"
    return f"SELECT key, value FROM ({inner}) {_ordered(cmd.tail, 'key, value')}"


_WHERE_WORDS = frozenset(("AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "TRUE", "FALSE", "BETWEEN"))


def index_tags(cmd: ShowTags, table: Table) -> list[str] | None:
    """The tags the statement reads when its WHERE names nothing but tags (and SQL keywords), so that
    distinct tag combinations answer it (`Table.tag_summary`); None when it needs the rows (time, a
    function, an unknown name: the planner's answer and errors then come from the table itself)."""
    tags = table.tags()
    needed = set(tags if cmd.keys is None else selected_tags(cmd, table))
    for token in cmd.where:
        if token.kind == "qident" or (token.kind == "word" and token.value.upper() not in _WHERE_WORDS):
            if table.columns.get(token.value) != TAG:
                return None
            needed.add(token.value)
    return [t for t in tags if t in needed]


def empty_tag_values() -> pa.Table:
    return pa.table({"key": pa.array([], pa.string()), "value": pa.array([], pa.string())})


def _ordered(tail: str, default: str) -> str:
    """The statement's ORDER BY / LIMIT / OFFSET, ordered by `default` when it has no ORDER BY."""
    return tail if tail[:5].upper() == "ORDER" else f"ORDER BY {default} {tail}"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
