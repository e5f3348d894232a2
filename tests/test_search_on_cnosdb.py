"""Searches answered as they must be on a real CnosDB, whose storage engine differs from plain DataFusion.

The suite runs cnosdb-lite with `CNOSDB_LITE_QUIRKS=1` (tests/conftest.py), so lite answers as CnosDB does:
a comparison with a field column matches every span written, in an earlier request, before that column
existed. Each span here is written by its own acknowledged WriteSpan, so each is an earlier request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from harness import RunningServer, running_server, server_config

from cnosdb_jaeger_storage.proto import model_pb2, storage_v1_grpc, trace_storage_grpc
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as pb
from cnosdb_jaeger_storage.proto import trace_storage_pb2 as v2
from cnosdb_lite.scan import TableScan

NOW = time.time_ns() - 60 * 10**9


def span(trace: int, tags: dict[str, str] | None = None, event: str = "") -> model_pb2.Span:
    out = model_pb2.Span(trace_id=trace.to_bytes(16, "big"), span_id=trace.to_bytes(8, "big"),
                         operation_name="op", process=model_pb2.Process(service_name="svc"))
    out.start_time.FromNanoseconds(NOW + trace)
    out.duration.FromNanoseconds(1000)
    for key, value in (tags or {}).items():
        out.tags.add(key=key, v_str=value)
    if event:
        log = out.logs.add(fields=[model_pb2.KeyValue(key="event", v_str=event)])
        log.timestamp.FromNanoseconds(NOW + trace + 10)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(Path(tmp_path_factory.mktemp("data")))) as s:
        with s.channel() as channel:
            writer = storage_v1_grpc.SpanWriterPluginStub(channel)
            # Trace 1 has none of the columns the later traces add; each write is a request of its own.
            for written in (span(1), span(2, {"http.method": "GET"}), span(3, event="retry"),
                            span(4, {"otel.status_code": "ERROR", "otel.status_description": "boom"}),
                            span(5, {"http.method": "PUT"})):
                writer.WriteSpan(pb.WriteSpanRequest(span=written))
        yield s


def find(server: RunningServer, **tags: str) -> list[int]:
    query = pb.TraceQueryParameters(service_name="svc", tags=tags, num_traces=20)
    query.start_time_min.FromNanoseconds(NOW - 10**9)
    query.start_time_max.FromNanoseconds(NOW + 10**9)
    with server.channel() as channel:
        found = storage_v1_grpc.SpanReaderPluginStub(channel).FindTraceIDs(pb.FindTraceIDsRequest(query=query))
    return sorted(int.from_bytes(t, "big") for t in found.trace_ids)


@pytest.mark.parametrize(("tags", "expected"), [
    ({"http.method": "GET"}, [2]),
    ({"http.method": "PUT"}, [5]),
    ({"http.method": "POST"}, []),
    ({"http.method": "zzz"}, []),
    ({"event": "retry"}, [3]),
    ({"event": "nothing"}, []),
    ({"otel.status_description": "boom"}, [4]),
    ({"otel.status_description": "other"}, []),
    ({"error": "true"}, [4]),
], ids=lambda v: str(v))
def test_a_tag_search_matches_no_span_written_before_the_column_existed(server: RunningServer,
                                                                        tags: dict[str, str],
                                                                        expected: list[int]) -> None:
    assert find(server, **tags) == expected


def test_a_search_without_tags_finds_every_trace(server: RunningServer) -> None:
    assert find(server) == [1, 2, 3, 4, 5]


def table_scans(server: RunningServer, call: Callable[[grpc.Channel], object],
                table: str = "jaeger_spans") -> list[TableScan]:
    """The reads of a table that one call made cnosdb-lite do, as CnosDB would do them."""
    engine = server.server.engine
    assert engine is not None and engine.scan_accounting
    engine.scans.clear()
    with server.channel() as channel:
        call(channel)
    return [scan for report in engine.scans for scan in report.scans if scan.table == table]


def window(query: Any) -> Any:
    query.start_time_min.FromNanoseconds(NOW - 10**9)
    query.start_time_max.FromNanoseconds(NOW + 10**9)
    return query


READS: dict[str, Callable[[grpc.Channel], object]] = {
    "v1 FindTraces": lambda channel: list(storage_v1_grpc.SpanReaderPluginStub(channel).FindTraces(
        pb.FindTracesRequest(query=window(pb.TraceQueryParameters(service_name="svc", num_traces=20))))),
    "v1 GetTrace": lambda channel: list(storage_v1_grpc.SpanReaderPluginStub(channel).GetTrace(
        pb.GetTraceRequest(trace_id=(3).to_bytes(16, "big")))),
    "v2 FindTraceIDs": lambda channel: trace_storage_grpc.TraceReaderStub(channel).FindTraceIDs(
        v2.FindTraceIDsRequest(query=window(v2.TraceQueryParameters(service_name="svc", search_depth=20)))),
    "v2 GetTraces": lambda channel: list(trace_storage_grpc.TraceReaderStub(channel).GetTraces(
        v2.GetTracesRequest(query=[v2.GetTraceParams(trace_id=t.to_bytes(16, "big")) for t in range(1, 6)]))),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_reads_of_many_traces_stay_on_cnosdbs_tag_index(server: RunningServer, read: str) -> None:
    """An IN list of 4 or more trace IDs makes CnosDB read every series of the table (and run out of memory)."""
    scans = table_scans(server, READS[read])
    assert scans
    assert [scan for scan in scans if scan.full_scan] == []


@pytest.mark.parametrize("read", ["services", "operations", "operations of a kind"])
def test_services_and_operations_read_only_the_operations_table(server: RunningServer, read: str) -> None:
    """Not the span table, whose series CnosDB's index holds one per span: the operations table, a series per
    operation (cnosdb/operations_table.py)."""
    def call(channel: grpc.Channel) -> None:
        reader = storage_v1_grpc.SpanReaderPluginStub(channel)
        if read == "services":
            assert list(reader.GetServices(pb.GetServicesRequest()).services) == ["svc"]
        else:
            kind = "server" if read == "operations of a kind" else ""
            found = reader.GetOperations(pb.GetOperationsRequest(service="svc", span_kind=kind)).operations
            assert [(o.name, o.span_kind) for o in found] == ([] if kind else [("op", "")])

    assert table_scans(server, call) == []
    index_reads = table_scans(server, call, "jaeger_spans_operations")
    assert index_reads and all(scan.series == 1 and scan.rows <= 1 for scan in index_reads)
