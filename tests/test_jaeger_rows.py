"""Rows straight to Jaeger spans (`rows_to_records`, then `records_to_jaeger`: v1 reads, the query HTTP API)
against the way round OTLP messages (`rows_to_resource_spans`, then `resource_spans_to_jaeger`).

Property: for rows as the span table returns them (spans of any kind written through the encoder into
cnosdb-lite and read back, and rows with any cells, broken ones included), both ways give the same Jaeger
spans, in the same order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_fuzz import EXAMPLES, export_requests, names
from test_jaeger_lines import jaeger_spans

from cnosdb_jaeger_storage.cnosdb.in_process import rows_of
from cnosdb_jaeger_storage.cnosdb.line_protocol import Encoder
from cnosdb_jaeger_storage.cnosdb.quoting import check_span_list
from cnosdb_jaeger_storage.errors import InvalidValue
from cnosdb_jaeger_storage.model import span_rows as col
from cnosdb_jaeger_storage.model.jaeger_otlp import (
    jaeger_spans_to_resource_spans,
    records_to_jaeger,
    resource_spans_to_jaeger,
)
from cnosdb_jaeger_storage.model.span_record import fill_resource_spans
from cnosdb_jaeger_storage.proto import model_pb2, trace_pb2

PROPERTY = settings(max_examples=max(EXAMPLES * 4, 100), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
_tables = itertools.count()


def _both_ways(rows: list[dict[str, Any]]) -> None:
    want = resource_spans_to_jaeger(col.rows_to_resource_spans(rows))
    records = col.rows_to_records(rows)
    assert fill_resource_spans(records) == col.rows_to_resource_spans(rows)
    assert records_to_jaeger(records) == want


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from cnosdb_lite.engine import Engine
    lite = Engine(Path(tmp_path_factory.mktemp("rows")))
    lite.execute("cnosdb", "public", "CREATE DATABASE IF NOT EXISTS jaeger")
    yield lite


def _stored_rows(engine: Any, resource_spans: list[trace_pb2.ResourceSpans]) -> list[dict[str, Any]]:
    """The rows of these spans (those the store would take) as the span table returns them."""
    for rs in resource_spans:
        for ss in rs.scope_spans:
            keep = []
            for span in ss.spans:
                try:
                    check_span_list([span])
                except InvalidValue:
                    continue
                keep.append(span)
            del ss.spans[:]
            ss.spans.extend(keep)
    table = f"rows_{next(_tables)}"
    lines = Encoder().encode(table, resource_spans)
    if not lines:
        return []
    engine.write_lines("cnosdb", "jaeger", "\n".join(lines), "ns")
    return rows_of(engine.execute("cnosdb", "jaeger", f"SELECT * FROM {table}"))


@PROPERTY
@given(request=export_requests())
def test_otlp_spans_read_back_the_same_both_ways(engine: Any, request: Any) -> None:
    _both_ways(_stored_rows(engine, list(request.resource_spans)))


@PROPERTY
@given(spans=st.lists(jaeger_spans(trace_ids=st.binary(min_size=16, max_size=16)), max_size=4))
def test_jaeger_spans_read_back_the_same_both_ways(engine: Any, spans: list[model_pb2.Span]) -> None:
    _both_ways(_stored_rows(engine, jaeger_spans_to_resource_spans(spans)))


def test_a_key_given_twice_keeps_its_first_value_with_its_type(engine: Any) -> None:
    """Found by Hypothesis: a Jaeger tag named as the warnings' array attribute, beside warnings, made a row
    whose cell held the tag's text and whose types cell said array, and reading the trace failed."""
    jaeger = model_pb2.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, warnings=[""])
    jaeger.tags.add(key="@jaeger@warnings", v_str="true")
    otlp = trace_pb2.ResourceSpans()
    span = otlp.scope_spans.add().spans.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8, name="twice")
    span.attributes.add(key="text-first").value.string_value = "true"
    span.attributes.add(key="text-first").value.array_value.values.add().int_value = 1
    span.attributes.add(key="number-first").value.int_value = 7
    span.attributes.add(key="number-first").value.string_value = "x"
    span.attributes.add(key="number-first").value.bool_value = True
    for spans, types in ((jaeger_spans_to_resource_spans([jaeger]), None), ([otlp], "number-first=int")):
        rows = _stored_rows(engine, spans)
        assert [row.get(col.SPAN_ATTRIBUTE_TYPES) for row in rows] == [types]
        _both_ways(rows)
        [(_, [(_, [read])])] = col.rows_to_records(rows)
        first: dict[str, Any] = {}
        for key, field, value in read.attributes:
            assert key not in first
            first[key] = (field, value)
        assert first == ({"@jaeger@warnings": ("string_value", "true")} if spans[0] is not otlp else
                         {"text-first": ("string_value", "true"), "number-first": ("int_value", 7)})


# --- rows with any cells ---------------------------------------------------------------------------

# Cells of the types CnosDB returns for each column, with values in the ranges this server writes, and text
# that is no valid value of its column.
TEXT = st.one_of(names, st.sampled_from(["", "0a0b", "00" * 16, "01" * 8, "SPAN_KIND_SERVER", "STATUS_CODE_ERROR",
                                         "5", "-3", "true", "1.5", "AP9o", "nan",
                                         '{"arrayValue":{"values":[{"stringValue":"x"}]}}', '{"kvlistValue":{}}',
                                         '{"intValue":"7"}', "{}", "[", "null"]))
COUNT = st.one_of(st.floats(0, 2**32 - 1), st.sampled_from([math.inf, math.nan]))
TIME = st.one_of(st.floats(0, 2**63), st.sampled_from([math.inf, -math.inf, math.nan]))
TEXT_COLUMNS = [col.TRACE_ID, col.SPAN_ID, col.PARENT_SPAN_ID, col.NAME, col.KIND, col.STATUS_CODE, col.STATUS_MESSAGE,
                col.TRACE_STATE, col.SERVICE_NAME, col.SCOPE_NAME, col.SCOPE_VERSION, col.RESOURCE_SCHEMA_URL,
                col.SCOPE_SCHEMA_URL, col.event_prefix(0) + col.EVENT_NAME, col.link_prefix(0) + col.LINK_TRACE_ID,
                col.link_prefix(0) + col.LINK_SPAN_ID, col.link_prefix(1) + col.LINK_TRACE_STATE]
COUNT_COLUMNS = [col.FLAGS, col.RESOURCE_DROPPED_ATTRIBUTES, col.SPAN_DROPPED_ATTRIBUTES, col.DROPPED_EVENTS,
                 col.DROPPED_LINKS, col.link_prefix(0) + col.LINK_FLAGS]
TIME_COLUMNS = [col.DURATION, col.END_TIME, col.event_prefix(0) + col.EVENT_TIME]
TYPES = st.lists(st.tuples(st.sampled_from(["a", "b", "error", "@jaeger@warnings", "otel.status_code", "event",
                                            "opentracing.ref_type", "service.name"]),
                           st.sampled_from(["int", "bool", "double", "bytes", "array", "kvlist", "x", ""])),
                 max_size=4).map(col.encode_types)
OVERFLOW = st.lists(st.tuples(names, st.one_of(names, st.sampled_from(["", "7", "true", "x"])),
                              st.sampled_from(["", "int", "bool", "array", "kvlist", "double"])),
                    max_size=3).map(lambda entries: col.encode_overflow(
                        col.overflow_text_entry(*entry) for entry in entries))
KEYS = st.sampled_from(["a", "b", "error", "@jaeger@warnings", "otel.status_code", "otel.status_description",
                        "w3c.tracestate", "event", "opentracing.ref_type", "service.name"])


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    row: dict[str, Any] = {}
    if draw(st.booleans()):
        row[col.TIME] = draw(st.integers(0, 2**63 - 1))
    for columns, cells in ((TEXT_COLUMNS, TEXT), (COUNT_COLUMNS, COUNT), (TIME_COLUMNS, TIME)):
        for column in draw(st.lists(st.sampled_from(columns), max_size=5)):
            row[column] = draw(st.none() | cells)
    for prefix in draw(st.lists(st.sampled_from([col.SPAN, col.RESOURCE, col.SCOPE, col.event_prefix(0),
                                                 col.link_prefix(0)]), max_size=3)):
        for key in draw(st.lists(KEYS, max_size=3)):
            row[prefix + col.ATTRIBUTES + key] = draw(TEXT)
        if draw(st.booleans()):
            row[prefix + col.ATTRIBUTE_TYPES] = draw(TYPES)
        if draw(st.booleans()):
            row[prefix + col.ATTRIBUTES_OVERFLOW] = draw(st.one_of(OVERFLOW, TEXT))
    return row


@PROPERTY
@given(rows=st.lists(rows(), max_size=4))
def test_any_rows_read_the_same_both_ways(rows: list[dict[str, Any]]) -> None:
    try:
        col.rows_to_resource_spans(rows)
    except (ValueError, TypeError):  # a cell no OTLP field holds (a kind beyond its range, an overflow entry
        # typed array whose text is no JSON object): rows this server never writes, not spans to compare
        assume(False)
    _both_ways(rows)
