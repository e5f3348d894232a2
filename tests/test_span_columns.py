"""Spans as rows of values (`ColumnEncoder`, the embedded default's write) against spans as line protocol (`Encoder`,
the write to a CnosDB) that cnosdb-lite parses.

Property: for any OTLP or Jaeger spans, under any attribute budget and whatever the encoders' caches hold, the
engine gets the same rows of the same column kinds both ways, span table and operations table, and the encoders
count the same overflows and know the same columns.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import export_requests
from test_jaeger_lines import PROPERTY, budgets, jaeger_spans

from cnosdb_jaeger_storage.cnosdb.in_process import arrow_tables
from cnosdb_jaeger_storage.cnosdb.line_protocol import AttributeBudget, Encoder
from cnosdb_jaeger_storage.cnosdb.operations_table import OperationsIndex, service_groups, service_of
from cnosdb_jaeger_storage.cnosdb.quoting import check_span_list, check_spans
from cnosdb_jaeger_storage.cnosdb.span_columns import ColumnarWrite, ColumnEncoder
from cnosdb_jaeger_storage.errors import InvalidValue
from cnosdb_jaeger_storage.model.jaeger_otlp import group_by_process
from cnosdb_jaeger_storage.proto import model_pb2, trace_service_pb2
from cnosdb_lite import line_protocol

TABLE = "jaeger_spans"
Parsed = dict[str, tuple[dict[str, str], list[str]]]  # table -> (column kinds, rows as sorted reprs)


def _parsed(tables: dict[str, Any]) -> Parsed:
    """Tables as the engine takes them (`LpTable` or `TableRows`): kinds, and rows without their nulls."""
    out = {}
    for name, table in tables.items():
        data = pa.Table.from_batches([table.data]) if isinstance(table.data, pa.RecordBatch) else table.data
        rows = [repr(sorted((k, v) for k, v in row.items() if v is not None)) for row in data.to_pylist()]
        out[name] = (dict(sorted(table.kinds.items())), sorted(rows))
    return out


def _lines(encoder: Encoder, index: OperationsIndex, spans: list[str], groups: list[tuple[str, Any]]) -> Any:
    operations, points = index.lines_of(groups)
    index.remember(points)
    return _parsed(line_protocol.parse("\n".join(spans + operations), 0)), encoder.take_overflowed()


def _columns(encoder: ColumnEncoder, index: OperationsIndex, spans: Any, groups: list[tuple[str, Any]]) -> Any:
    operations, points = index.rows_of(groups)
    index.remember(points)
    return _parsed(arrow_tables([ColumnarWrite([spans, operations])])), encoder.take_overflowed()


def _sized(identifier: bytes, size: int) -> bytes:
    return identifier.ljust(size, b"\x07")[:size]


def _storable(request: trace_service_pb2.ExportTraceServiceRequest) -> trace_service_pb2.ExportTraceServiceRequest:
    """`request` with IDs of OTLP's lengths and times CnosDB can store (`check_spans`), its values kept."""
    last = 2**63 - 2
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                span.trace_id, span.span_id = _sized(span.trace_id, 16), _sized(span.span_id, 8)
                if span.parent_span_id:
                    span.parent_span_id = _sized(span.parent_span_id, 8)
                span.start_time_unix_nano %= last
                span.end_time_unix_nano %= last
                for event in span.events:
                    event.time_unix_nano %= last
                for link in span.links:
                    link.trace_id, link.span_id = _sized(link.trace_id, 16), _sized(link.span_id, 8)
    check_spans(request.resource_spans)
    return request


@PROPERTY
@given(requests=st.lists(export_requests().map(_storable), min_size=1, max_size=3), budget=budgets)
def test_otlp_spans_as_columns_are_the_parsed_lines(requests: list[trace_service_pb2.ExportTraceServiceRequest],
                                                     budget: tuple[int | None, int | None]) -> None:
    lines, columns = Encoder(AttributeBudget(*budget)), ColumnEncoder(AttributeBudget(*budget))
    lines_index, columns_index = OperationsIndex(TABLE), OperationsIndex(TABLE)
    for request in requests:
        groups = list(service_groups(request.resource_spans))
        want = _lines(lines, lines_index, lines.encode(TABLE, request.resource_spans), groups)
        got = _columns(columns, columns_index, columns.encode(TABLE, request.resource_spans), groups)
        assert got == want
        assert columns.budget.known == lines.budget.known


@PROPERTY
@given(batches=st.lists(st.lists(jaeger_spans(), max_size=4), min_size=1, max_size=3), budget=budgets)
def test_jaeger_spans_as_columns_are_the_parsed_lines(batches: list[list[model_pb2.Span]],
                                                       budget: tuple[int | None, int | None]) -> None:
    lines, columns = Encoder(AttributeBudget(*budget)), ColumnEncoder(AttributeBudget(*budget))
    lines_index, columns_index = OperationsIndex(TABLE), OperationsIndex(TABLE)
    for spans in batches:
        try:
            groups = group_by_process(spans)
            for group in groups:
                check_span_list(group.spans)
        except (ValueError, InvalidValue):
            continue
        pairs = [(service_of(group.resource), group.spans) for group in groups]
        want = _lines(lines, lines_index, lines.encode_jaeger(TABLE, groups), pairs)
        got = _columns(columns, columns_index, columns.encode_jaeger(TABLE, groups), pairs)
        assert got == want
        assert columns.budget.known == lines.budget.known


def test_writes_of_a_batch_become_one_table_each() -> None:
    encoder = ColumnEncoder()
    request = trace_service_pb2.ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    span = spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="a", start_time_unix_nano=5)
    first = encoder.encode(TABLE, request.resource_spans)
    span.attributes.add(key="k").value.int_value = 1
    second = encoder.encode(TABLE, request.resource_spans)
    tables = arrow_tables([ColumnarWrite([first]), ColumnarWrite([second]), ColumnarWrite()])
    assert list(tables) == [TABLE]
    data = tables[TABLE].data
    assert data.num_rows == 2 and data.schema.names[0] == "time"
    assert data.column("ResourceSpans/ScopeSpans/Span/attributes/k").to_pylist() == [None, "1"]


def test_an_empty_write_has_no_table() -> None:
    assert arrow_tables([ColumnarWrite()]) == {}


def test_a_table_line_protocol_cannot_name_is_refused_alike() -> None:
    for encoder in (Encoder(), ColumnEncoder()):
        with pytest.raises(ValueError, match="cannot be written with line protocol"):
            encoder.encode("a=b", [])
        with pytest.raises(ValueError, match="cannot be written with line protocol"):
            encoder.encode_jaeger("#comment", [])
