"""OTLP spans, and Jaeger spans, to rows of values for the embedded cnosdb-lite: the rows of
`span_encoding.SpanWalker` as the engine stores them, with no line protocol in between.

A row is a dict from column to value, in the form cnosdb-lite would have parsed out of the line that
`line_protocol.Encoder` writes for the same span: names and tag values in their stored form, doubles as floats,
the first cell of a column kept. `in_process.InProcessCnosDB.write_columns` makes Arrow columns of them. Plain
Python here: the server imports pyarrow only in the embedded default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from opentelemetry.proto.trace.v1 import trace_pb2

from ..model.jaeger_otlp import ProcessGroup
from ..model.stored_names import stored_name
from .quoting import lp_measurement
from .span_encoding import CACHE_LIMIT, AttributeBudget, SpanWalker

__all__ = ["F64", "I64", "STRING", "TAG", "TIME", "ColumnEncoder", "ColumnarWrite", "Row", "TableRows"]

# Column kinds, as cnosdb-lite names them (`cnosdb_lite.lp_exact`).
TAG, STRING, F64, I64 = "TAG", "STRING", "F64", "I64"
TIME = "time"

# A row: column (stored form) -> value (str, float or int), `time` (int nanoseconds) included.
Row = dict[str, object]


@dataclass
class TableRows:
    """Rows of one table and the kinds of their columns (`kinds` may name more columns than the rows hold)."""

    table: str
    rows: list[Row]
    kinds: dict[str, str]


@dataclass
class ColumnarWrite:
    """What one write stores: the rows of its tables. Its length is its rows, as a line-protocol write's is its
    lines (`storage.writer.BatchWriter` counts them)."""

    tables: list[TableRows] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(t.rows) for t in self.tables)


class ColumnSink:
    """`span_encoding.RowSink` of rows of values: each span a row appended to `rows`.

    The cells that need no conversion are stored by the row's own `setdefault` (the first cell of a column is
    kept), which `begin` makes this sink's `string`, `id_tag` and `integer`: no Python call per cell.
    """

    string: Callable[[str, str], object]
    id_tag: Callable[[str, str], object]
    integer: Callable[[str, int], object]

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.kinds: dict[str, str] = {}     # every column a token was made for (a column's kind never changes)
        self._base: Row = {}
        self._tag_values: dict[str, str] = {}
        self.begin()

    def _token(self, column: str, kind: str) -> str:
        name = stored_name(column)
        self.kinds[name] = kind
        return name

    def tag_token(self, column: str) -> str:
        return self._token(column, TAG)

    def string_token(self, column: str) -> str:
        return self._token(column, STRING)

    def number_token(self, column: str) -> str:
        return self._token(column, F64)

    def integer_token(self, column: str) -> str:
        return self._token(column, I64)

    def tag(self, token: str, value: str) -> object:
        values = self._tag_values
        stored = values.get(value)
        if stored is None:
            if len(values) >= CACHE_LIMIT:
                values.clear()
            stored = values[value] = stored_name(value)
        return self._row.setdefault(token, stored)

    def number(self, token: str, value: int) -> object:
        return self._row.setdefault(token, float(value))

    def begin(self) -> None:
        row: Row = {}
        self._row = row
        self.string = self.id_tag = self.integer = row.setdefault

    def end_group(self) -> Row:
        return self._row

    def use_groups(self, resource: Row, scope: Row) -> None:
        self._base = {**resource, **scope}

    def end_span(self, start: int) -> None:
        row = self._row
        row.update(self._base)  # a group's columns are never a span's own
        row[TIME] = start
        self.rows.append(row)


class ColumnEncoder(SpanWalker[Row]):
    """`line_protocol.Encoder`'s spans as rows of values: the same rows, budget and overflow counts."""

    def __init__(self, budget: AttributeBudget | None = None) -> None:
        self._columns = ColumnSink()
        super().__init__(self._columns, budget)

    def encode(self, table: str, resource_spans: Iterable[trace_pb2.ResourceSpans]) -> TableRows:
        """A row for every span, in input order. ValueError, before any span, for a table line protocol cannot
        name (CnosDB could not hold it: `line_protocol.Encoder.encode` refuses it alike)."""
        lp_measurement(table)
        self.walk(resource_spans)
        return self._take(table)

    def encode_jaeger(self, table: str, groups: Iterable[ProcessGroup]) -> TableRows:
        """`encode` of Jaeger spans without OTLP messages (`SpanWalker.walk_jaeger`)."""
        lp_measurement(table)
        self.walk_jaeger(groups)
        return self._take(table)

    def _take(self, table: str) -> TableRows:
        sink = self._columns
        rows, sink.rows = sink.rows, []
        return TableRows(table, rows, sink.kinds)
