"""The attribute budget (docs/schema.md, "Attributes beyond the budget") through the real server.

Spans go in as OTLP/HTTP posts and come back out through Jaeger v1 GetTrace / FindTraces (and v2 for typed
values); the table's columns are read with DESCRIBE through the in-process cnosdb-lite.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from conftest import sort_key_values
from harness import RunningServer, running_server, server_config
from opentelemetry.proto.common.v1 import common_pb2
from test_otlp_http import metric_value, otlp_request, post, v1_find, v1_trace, v2_trace

from cnosdb_jaeger_storage.model import span_rows
from cnosdb_jaeger_storage.proto import model_pb2, trace_pb2

SPAN_OVERFLOW = span_rows.SPAN_ATTRIBUTES_OVERFLOW
OVERFLOWED = "cnosdb_jaeger_attributes_overflowed_total"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("budget"))) as running:
        yield running


def span_with(attributes: list[tuple[str, dict]], name: str = "op") -> trace_pb2.Span:
    """A span whose attributes are (key, AnyValue fields) in this order."""
    start = time.time_ns() - 60 * 10**9
    span = trace_pb2.Span(trace_id=os.urandom(16), span_id=os.urandom(8), name=name,
                          kind=trace_pb2.Span.SPAN_KIND_SERVER, start_time_unix_nano=start,
                          end_time_unix_nano=start + 1500)
    for key, value in attributes:
        span.attributes.add(key=key, value=common_pb2.AnyValue(**value))
    return span


def write(server: RunningServer, service: str, *spans: trace_pb2.Span) -> None:
    response = post(server.url("otlp_http") + "/v1/traces", otlp_request(service, *spans).SerializeToString())
    assert response.status_code == 200, response.text


def select(server: RunningServer, statement: str) -> list[dict]:
    table = server.server.engine.execute("cnosdb", "jaeger", statement)  # type: ignore[attr-defined]
    return table.to_pylist() if table is not None else []


def attribute_columns(server: RunningServer) -> list[str]:
    """The table's attribute columns, the service.name tag aside."""
    return [r["column_name"] for r in select(server, "DESCRIBE TABLE jaeger_spans")
            if span_rows.ATTRIBUTE_COLUMN.fullmatch(r["column_name"]) and r["column_name"] != span_rows.SERVICE_NAME]


def overflow_cell(server: RunningServer, span: trace_pb2.Span) -> str | None:
    [row] = select(server, f'SELECT "{SPAN_OVERFLOW}" AS cell FROM jaeger_spans '
                           f"WHERE \"{span_rows.SPAN_ID}\" = '{span.span_id.hex()}'")
    return row["cell"]


def only_span(resource_spans: list[trace_pb2.ResourceSpans]) -> trace_pb2.Span:
    [rs] = resource_spans
    [ss] = rs.scope_spans
    [span] = ss.spans
    return span


def sorted_attributes(span: trace_pb2.Span) -> list[bytes]:
    copy = trace_pb2.Span()
    copy.CopyFrom(span)
    sort_key_values(copy.attributes)
    return [kv.SerializeToString(deterministic=True) for kv in copy.attributes]


def mixed(i: int, prefix: str = "k") -> tuple[str, dict]:
    """Attribute i: strings, ints, bools, doubles and arrays in turn."""
    key = f"{prefix}.{i:03d}"
    return key, [
        {"string_value": f"value {i}"}, {"int_value": i * 7 - 300}, {"bool_value": i % 2 == 0},
        {"double_value": i / 8}, {"array_value": {"values": [{"string_value": "a"}, {"int_value": i}]}},
    ][i % 5]


def test_a_span_with_200_attributes_reads_back_exactly_with_72_in_the_overflow_column(server: RunningServer
                                                                                        ) -> None:
    before = metric_value(server, OVERFLOWED, level="span")
    span = span_with([mixed(i) for i in range(200)])
    write(server, "wide", span)

    assert sorted_attributes(only_span(v2_trace(server, span.trace_id))) == sorted_attributes(span)
    cell = overflow_cell(server, span)
    assert cell is not None
    assert [key for key, _ in span_rows.decode_overflow(cell)] == [f"k.{i:03d}" for i in range(128, 200)]
    assert metric_value(server, OVERFLOWED, level="span") - before == 72

    [jaeger] = v1_trace(server, span.trace_id)
    tags = {kv.key: kv for kv in jaeger.tags}
    assert tags["k.000"].v_str == "value 0"
    assert tags["k.197"].v_type == model_pb2.ValueType.BOOL and tags["k.197"].v_bool is False
    assert tags["k.196"].v_type == model_pb2.ValueType.INT64 and tags["k.196"].v_int64 == 196 * 7 - 300
    assert tags["k.198"].v_type == model_pb2.ValueType.FLOAT64 and tags["k.198"].v_float64 == 198 / 8
    assert tags["k.199"].v_str == '["a",199]'
    assert {f"k.{i:03d}" for i in range(200)} <= set(tags)


def test_a_tag_search_finds_an_overflowed_attribute_by_its_exact_value(server: RunningServer) -> None:
    span = span_with([*(mixed(i, "filler") for i in range(128)), ("late.key", {"string_value": "needle"}),
                      ("late.number", {"int_value": 42})])
    write(server, "searched", span)
    assert "late.key" in overflow_cell(server, span)  # type: ignore[operator]

    def found(tags: dict[str, str]) -> list[bytes]:
        return sorted({s.trace_id for s in v1_find(server, "searched", tags)})

    assert found({"late.key": "needle"}) == [span.trace_id]
    assert found({"late.number": "42"}) == [span.trace_id]
    assert found({"late.key": "needle", "filler.000": "value 0"}) == [span.trace_id]
    assert found({"late.key": "needl"}) == []
    assert found({"late.key": "needle2"}) == []
    assert found({"late.key": "other"}) == []
    assert found({"late.number": "4"}) == []
    assert found({"late": "needle"}) == []


HOSTILE_KEY = "100%_off 'quoted' \"double\" back\\slash, colon: [x]"
HOSTILE_VALUE = "50%_\\ \"q\" 'a' ,:[]{}"
# Every text a LIKE with unescaped `%` / `_`, or a backslash taken as an escape, would also match.
LOOKALIKES = [
    ("100X_off 'quoted' \"double\" back\\slash, colon: [x]", HOSTILE_VALUE),
    ("100%Xoff 'quoted' \"double\" back\\slash, colon: [x]", HOSTILE_VALUE),
    ("100%_off 'quoted' \"double\" backslash, colon: [x]", HOSTILE_VALUE),
    ("100%_off 'quoted' \"double\" back\\\\slash, colon: [x]", HOSTILE_VALUE),
    (HOSTILE_KEY, "50X_\\ \"q\" 'a' ,:[]{}"),
    (HOSTILE_KEY, "50%X\\ \"q\" 'a' ,:[]{}"),
    (HOSTILE_KEY, "50%_ \"q\" 'a' ,:[]{}"),
    (HOSTILE_KEY, "50%_\\ \"q\" 'a' ,:[]{}tail"),
    ("100abc25_off 'quoted' \"double\" back\\slash, colon: [x]", HOSTILE_VALUE),  # stored %25 is `25`
    (HOSTILE_KEY, "50%25X\\ \"q\" 'a' ,:[]{}"),
    (HOSTILE_KEY + "x", HOSTILE_VALUE),
]


def test_a_hostile_overflowed_key_is_found_exactly(server: RunningServer) -> None:
    filler = [mixed(i, "pad") for i in range(128)]
    target = span_with([*filler, (HOSTILE_KEY, {"string_value": HOSTILE_VALUE})])
    others = [span_with([*filler, (key, {"string_value": value})]) for key, value in LOOKALIKES]
    write(server, "hostile", target, *others)
    for span in (target, *others):
        assert sorted_attributes(only_span(v2_trace(server, span.trace_id))) == sorted_attributes(span)
        assert overflow_cell(server, span) is not None

    assert {s.trace_id for s in v1_find(server, "hostile", {HOSTILE_KEY: HOSTILE_VALUE})} == {target.trace_id}
    for other, (key, value) in zip(others, LOOKALIKES, strict=True):
        assert {s.trace_id for s in v1_find(server, "hostile", {key: value})} == {other.trace_id}


def test_10000_keys_leave_at_most_the_column_budget_and_every_span_whole(tmp_path) -> None:
    with running_server(server_config(tmp_path)) as server:
        traces = []  # a trace of 10 spans per request, 100 keys each
        for request in range(10):
            batch = [span_with([(f"r{request}.s{s}.key{k}", {"string_value": f"v{k}"}) for k in range(100)])
                     for s in range(10)]
            for span in batch[1:]:
                span.trace_id = batch[0].trace_id
            write(server, "many-keys", *batch)
            traces.append(batch)

        columns = attribute_columns(server)
        assert len(columns) <= 1000
        assert len(columns) >= 990  # the budget is used, not wasted
        for batch in traces:
            [rs] = v2_trace(server, batch[0].trace_id)
            read = sorted((s.span_id, sorted_attributes(s)) for s in rs.scope_spans[0].spans)
            assert read == sorted((s.span_id, sorted_attributes(s)) for s in batch)
        last = traces[-1][-1]
        assert len(span_rows.decode_overflow(overflow_cell(server, last))) == 100
        assert {s.trace_id for s in v1_find(server, "many-keys", {"r9.s9.key7": "v7"})} == {last.trace_id}
        # A key that has a column keeps it once the table is full.
        known = span_with([("r0.s0.key0", {"string_value": "again"})])
        write(server, "many-keys", known)
        assert overflow_cell(server, known) is None


def test_the_budget_counts_columns_other_instances_added(tmp_path) -> None:
    """A second store on the same table (another instance) reads the columns with DESCRIBE before writing."""
    from cnosdb_jaeger_storage.storage.store import TraceStore

    with running_server(server_config(tmp_path, max_attribute_columns=50)) as server:
        write(server, "first", span_with([(f"a{k}", {"string_value": "x"}) for k in range(60)]))
        assert len(attribute_columns(server)) == 50
        first = server.server.tenancy.store(None)
        other = TraceStore(server.server.client, first.target, first._writer, max_attribute_columns=50)
        span = span_with([("a1", {"string_value": "known"}), ("new", {"string_value": "x"})])
        request = otlp_request("second", span)
        server.run(other.write(request.resource_spans, "test"))
        assert len(attribute_columns(server)) == 50
        assert [key for key, _ in span_rows.decode_overflow(overflow_cell(server, span))] == ["new"]
        assert sorted_attributes(only_span(v2_trace(server, span.trace_id))) == sorted_attributes(span)
