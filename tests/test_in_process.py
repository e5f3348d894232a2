"""The embedded default calls cnosdb-lite in-process (no HTTP, gzip or JSON) and writes spans as columns (no line
protocol: `ColumnEncoder`, `Engine.write_columns`); a server given --cnosdb-url talks to it over CnosDB's HTTP API,
in line protocol. The same spans, written through both, are stored as identical rows and answered identically."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conformance_cases import CASES, SearchCase
from harness import RunningServer, cnosdb_lite_process, running_server, server_config
from test_conformance_v1 import (
    CASE_IDS,
    SEARCH_TRACES,
    find_traces,
    get_trace,
    normalized,
    query_of,
    trace_of,
    write_stream,
)

from cnosdb_jaeger_storage.cnosdb.in_process import InProcessCnosDB
from cnosdb_jaeger_storage.model.jaeger_otlp import jaeger_spans_to_resource_spans
from cnosdb_jaeger_storage.proto import storage_v1_grpc, trace_service_pb2, trace_service_pb2_grpc
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as pb
from cnosdb_lite import storage

Pair = tuple[RunningServer, RunningServer]
# An OTLP span with what Jaeger spans cannot carry: more attribute types, non-finite doubles, events, links.
OTLP_TRACE = b"\x42" * 16


def otlp_request() -> trace_service_pb2.ExportTraceServiceRequest:
    [resource_spans] = jaeger_spans_to_resource_spans(trace_of(SEARCH_TRACES[0]).spans[:1])
    span = resource_spans.scope_spans[0].spans[0]
    span.trace_id = OTLP_TRACE
    for key, value in (("nan", float("nan")), ("inf", float("inf")), ("half", 0.5), ("big", 2**62)):
        attribute = span.attributes.add(key=key)
        if isinstance(value, float):
            attribute.value.double_value = value
        else:
            attribute.value.int_value = value
    span.attributes.add(key="list").value.array_value.values.add().string_value = "a"
    event = span.events.add(name="retry", time_unix_nano=span.start_time_unix_nano + 1)
    event.attributes.add(key="attempt").value.int_value = 2
    span.links.add(trace_id=b"\x43" * 16, span_id=b"\x44" * 8).attributes.add(key="k").value.bool_value = True
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[resource_spans])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    data = tmp_path_factory.mktemp("paths")
    with cnosdb_lite_process(data / "lite") as url, \
            running_server(server_config(data / "embedded")) as embedded, \
            running_server(server_config(data / "remote", cnosdb_url=url)) as remote:
        assert isinstance(embedded.server.client, InProcessCnosDB)
        assert not isinstance(remote.server.client, InProcessCnosDB)
        for server in (embedded, remote):
            write_stream(server, (span for name in SEARCH_TRACES for span in trace_of(name).spans))
            with server.channel() as channel:
                trace_service_pb2_grpc.TraceServiceStub(channel).Export(otlp_request(), timeout=30)
        yield embedded, remote


def rows(server: RunningServer, statement: str) -> list[dict[str, Any]]:
    config = server.server.config
    found = server.run(server.server.client.sql(statement, tenant=config.tenant, database=config.database))
    return sorted(found, key=lambda row: repr(sorted(row.items())))


def test_the_embedded_default_writes_columns_and_no_line_protocol(servers: Pair) -> None:
    engine = servers[0].server.engine
    assert engine is not None
    logged = [header["op"] for header, _ in storage.replay(engine.data_dir / "wal", 0)]
    assert "columns" in logged and "write" not in logged


def test_both_paths_store_identical_rows(servers: Pair) -> None:
    embedded, remote = (rows(s, 'SELECT * FROM "jaeger_spans"') for s in servers)
    assert len(embedded) > 50 and embedded == remote


def test_both_paths_index_the_same_operations(servers: Pair) -> None:
    # Not `last_start`: the newest start of an operation's hour that the first write of it carried, and the
    # stream's concurrent chunks reach the store in any order.
    statement = 'SELECT time, service, name, kind FROM "jaeger_spans_operations"'
    embedded, remote = (rows(s, statement) for s in servers)
    assert len(embedded) > 30 and embedded == remote


def test_rows_keep_their_types_and_leave_out_nulls(servers: Pair) -> None:
    span = "ResourceSpans/ScopeSpans/Span/"
    for server in servers:
        [row] = rows(server, f'SELECT * FROM jaeger_spans WHERE "{span}trace_id" = \'{OTLP_TRACE.hex()}\'')
        assert isinstance(row["time"], int) and all(value is not None for value in row.values())
        assert isinstance(row[span + "Event_0/time_unix_nano"], float)  # CnosDB's layout: a DOUBLE
        assert (row[span + "attributes/nan"], row[span + "attributes/half"]) == ("NaN", "0.5")  # values as text
        assert row[span + "attributes/big"] == str(2**62)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_both_paths_find_the_same_traces(servers: Pair, case: SearchCase) -> None:
    embedded, remote = ([normalized(trace) for trace in find_traces(s, query_of(case))] for s in servers)
    assert embedded == remote


def test_both_paths_answer_trace_services_and_operations_alike(servers: Pair) -> None:
    answers = []
    for server in servers:
        with server.channel() as channel:
            reader = storage_v1_grpc.SpanReaderPluginStub(channel)
            services = list(reader.GetServices(pb.GetServicesRequest()).services)
            operations = [reader.GetOperations(pb.GetOperationsRequest(service=s)) for s in services]
        traces = [normalized(get_trace(server, trace_of(name).spans[0].trace_id)) for name in SEARCH_TRACES]
        answers.append((services, operations, traces, normalized(get_trace(server, OTLP_TRACE))))
    assert answers[0] == answers[1] and len(answers[0][0]) > 3


def test_the_embedded_engine_flushes_at_the_configured_memtable_size(tmp_path: Path) -> None:
    with running_server(server_config(tmp_path, memtable_size=1)) as server:
        engine = server.server.engine
        assert engine is not None and engine.memtable_bytes == 2**20
        request = otlp_request()
        template = request.resource_spans[0].scope_spans[0].spans[0]
        template.attributes.add(key="payload").value.string_value = "x" * 1024
        spans = request.resource_spans[0].scope_spans[0].spans
        for i in range(1, 3000):  # over 3 MiB of distinct rows
            spans.add().CopyFrom(template)
            spans[-1].trace_id = i.to_bytes(16, "big")
        with server.channel() as channel:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=60)
        table = engine.tenants["cnosdb"]["jaeger"].tables["jaeger_spans"]
        assert table.segments  # written to disk as Parquet, not kept in memory
