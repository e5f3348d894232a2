"""Jaeger remote storage v2 and the OTLP TraceService, through a running server's gRPC port."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import RunningServer, running_server, server_config

from cnosdb_jaeger_storage.proto import (
    common_pb2,
    dependency_storage_grpc,
    dependency_storage_pb2,
    resource_pb2,
    storage_v1_grpc,
    storage_v1_pb2,
    trace_pb2,
    trace_service_pb2,
    trace_service_pb2_grpc,
    trace_storage_grpc,
)
from cnosdb_jaeger_storage.proto import trace_storage_pb2 as pb

NOW = time.time_ns() - 3600 * 10**9
MS = 10**6


def kv(key: str, **value: object) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def span(trace: int, span_id: int, parent: int = 0, *, start: int = NOW, name: str = "op",
         attributes: Iterable[common_pb2.KeyValue] = (), kind: int = trace_pb2.Span.SPAN_KIND_SERVER
         ) -> trace_pb2.Span:
    return trace_pb2.Span(trace_id=trace.to_bytes(16, "big"), span_id=span_id.to_bytes(8, "big"),
                          parent_span_id=parent.to_bytes(8, "big") if parent else b"", name=name, kind=kind,
                          start_time_unix_nano=start, end_time_unix_nano=start + 5 * MS,
                          attributes=list(attributes))


def resource_spans(service: str, spans: list[trace_pb2.Span]) -> trace_pb2.ResourceSpans:
    return trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[kv("service.name", string_value=service)]),
        scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="lib", version="1"),
                                          spans=spans)])


TYPED = [kv("http.status_code", int_value=503), kv("ratio", double_value=0.25), kv("cached", bool_value=True),
         kv("peer", string_value="db-1")]
BATCH = [
    resource_spans("frontend", [span(1, 1, attributes=TYPED), span(2, 1, start=NOW + 10 * MS)]),
    resource_spans("backend", [span(1, 2, parent=1, name="query", kind=trace_pb2.Span.SPAN_KIND_CLIENT),
                               span(1, 3, parent=1, name="query")]),
    resource_spans("large", [span(3, i + 1, start=NOW + i) for i in range(2500)]),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterable[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("v2"))) as s, s.channel() as channel:
        response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(
            trace_service_pb2.ExportTraceServiceRequest(resource_spans=BATCH))
        assert not response.HasField("partial_success")
        yield s


def reader(s: RunningServer, channel: grpc.Channel) -> trace_storage_grpc.TraceReaderStub:
    return trace_storage_grpc.TraceReaderStub(channel)


def stamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


def sorted_attributes(s: trace_pb2.Span) -> trace_pb2.Span:
    """Attribute order is not kept (as Jaeger's own comparison ignores it)."""
    copy = trace_pb2.Span()
    copy.CopyFrom(s)
    ordered = sorted(copy.attributes, key=lambda a: a.key)
    del copy.attributes[:]
    copy.attributes.extend(ordered)
    return copy


def spans_of(chunks: Iterable[trace_pb2.TracesData]) -> list[trace_pb2.Span]:
    return [s for c in chunks for rs in c.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_get_traces_streams_each_trace_in_non_empty_chunks_of_one_trace(server: RunningServer) -> None:
    with server.channel() as channel:
        chunks = list(reader(server, channel).GetTraces(pb.GetTracesRequest(query=[
            pb.GetTraceParams(trace_id=(1).to_bytes(16, "big")), pb.GetTraceParams(trace_id=(3).to_bytes(16, "big"))])))
    trace_ids = [{s.trace_id for s in spans_of([c])} for c in chunks]
    assert all(len(t) == 1 for t in trace_ids)
    assert all(0 < len(spans_of([c])) <= 1000 for c in chunks)
    order = [t.pop() for t in trace_ids]
    assert order == sorted(order)  # trace 1 whole, then trace 3 in consecutive chunks
    assert len(spans_of(chunks)) == 3 + 2500


def test_get_traces_returns_spans_as_written(server: RunningServer) -> None:
    with server.channel() as channel:
        chunks = list(reader(server, channel).GetTraces(pb.GetTracesRequest(query=[
            pb.GetTraceParams(trace_id=(1).to_bytes(16, "big"))])))
    by_id = {s.span_id: s for s in spans_of(chunks)}
    assert sorted_attributes(by_id[(1).to_bytes(8, "big")]) == sorted_attributes(BATCH[0].scope_spans[0].spans[0])
    assert by_id[(2).to_bytes(8, "big")] == BATCH[1].scope_spans[0].spans[0]
    services = {rs.resource.attributes[0].value.string_value for c in chunks for rs in c.resource_spans}
    assert services == {"frontend", "backend"}


def test_get_traces_honours_the_time_window_and_ignores_unknown_ids(server: RunningServer) -> None:
    with server.channel() as channel:
        stub = reader(server, channel)
        windowed = list(stub.GetTraces(pb.GetTracesRequest(query=[pb.GetTraceParams(
            trace_id=(3).to_bytes(16, "big"), start_time=stamp(NOW), end_time=stamp(NOW + 99))])))
        missing = list(stub.GetTraces(pb.GetTracesRequest(query=[pb.GetTraceParams(trace_id=bytes(16))])))
    assert len(spans_of(windowed)) == 100
    assert missing == []


@pytest.mark.parametrize("attribute", TYPED, ids=[a.key for a in TYPED])
def test_typed_attribute_search(server: RunningServer, attribute: common_pb2.KeyValue) -> None:
    query = pb.TraceQueryParameters(service_name="frontend", start_time_min=stamp(NOW - 60 * 10**9),
                                    start_time_max=stamp(NOW + 60 * 10**9),
                                    attributes=[pb.KeyValue.FromString(attribute.SerializeToString())])
    with server.channel() as channel:
        found = spans_of(reader(server, channel).FindTraces(pb.FindTracesRequest(query=query)))
    assert {s.trace_id for s in found} == {(1).to_bytes(16, "big")}
    assert len(found) == 3  # the whole trace, not only the matching span


def test_typed_search_does_not_match_another_value(server: RunningServer) -> None:
    query = pb.TraceQueryParameters(service_name="frontend", attributes=[
        pb.KeyValue(key="http.status_code", value=pb.AnyValue(int_value=200))])
    with server.channel() as channel:
        assert list(reader(server, channel).FindTraces(pb.FindTracesRequest(query=query))) == []


def test_find_trace_ids_returns_newest_first_with_time_hints(server: RunningServer) -> None:
    query = pb.TraceQueryParameters(service_name="frontend", search_depth=10)
    with server.channel() as channel:
        found = reader(server, channel).FindTraceIDs(pb.FindTraceIDsRequest(query=query)).trace_ids
    assert [f.trace_id for f in found] == [(2).to_bytes(16, "big"), (1).to_bytes(16, "big")]
    assert found[1].start.ToNanoseconds() == NOW
    assert found[1].end.ToNanoseconds() == NOW + 5 * MS


def test_services_and_operations(server: RunningServer) -> None:
    with server.channel() as channel:
        stub = reader(server, channel)
        services = stub.GetServices(pb.GetServicesRequest()).services
        operations = stub.GetOperations(pb.GetOperationsRequest(service="backend")).operations
        clients = stub.GetOperations(pb.GetOperationsRequest(service="backend", span_kind="client")).operations
    assert list(services) == ["backend", "frontend", "large"]
    assert sorted((o.name, o.span_kind) for o in operations) == [("query", "client"), ("query", "server")]
    assert [(o.name, o.span_kind) for o in clients] == [("query", "client")]


def test_dependencies_in_v1_and_v2(server: RunningServer) -> None:
    start, end = stamp(NOW - 3600 * 10**9), stamp(NOW + 3600 * 10**9)
    with server.channel() as channel:
        v2 = dependency_storage_grpc.DependencyReaderStub(channel).GetDependencies(
            dependency_storage_pb2.GetDependenciesRequest(start_time=start, end_time=end)).dependencies
        v1 = storage_v1_grpc.DependenciesReaderPluginStub(channel).GetDependencies(
            storage_v1_pb2.GetDependenciesRequest(start_time=start, end_time=end)).dependencies
    assert [(d.parent, d.child, d.call_count) for d in v2] == [("frontend", "backend", 2)]
    assert [(d.parent, d.child, d.call_count) for d in v1] == [("frontend", "backend", 2)]


ERROR = trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR)


def with_status(s: trace_pb2.Span, status: trace_pb2.Status, end: int | None = None) -> trace_pb2.Span:
    s.status.CopyFrom(status)
    if end is not None:
        s.end_time_unix_nano = end
    return s


# Trace 0x51: a root in "gateway", children in "orders" (one an error) and "payments" (an error), and a span of
# "orders" whose parent is not in the trace. Trace 0x52: no root, both spans children of a span not written.
SUMMARIZED = [
    resource_spans("gateway", [span(0x51, 1, start=NOW, name="GET /checkout")]),
    resource_spans("orders", [with_status(span(0x51, 2, 1, start=NOW + 1 * MS, name="create"), ERROR),
                              span(0x51, 3, 2, start=NOW + 2 * MS, name="insert"),
                              span(0x51, 4, 0x77, start=NOW + 3 * MS, name="retry")]),
    resource_spans("payments", [with_status(span(0x51, 5, 1, start=NOW + 4 * MS, name="charge"), ERROR,
                                            end=NOW + 50 * MS)]),
    resource_spans("worker", [span(0x52, 1, 0x99, start=NOW + 60 * MS, name="consume"),
                              span(0x52, 2, 0x99, start=NOW + 61 * MS, name="consume")]),
]
LARGE_ATTRIBUTE = "x" * 5000
LARGE_TRACE = [span(0x60, i + 1, 1 if i else 0, start=NOW + i, attributes=[kv("payload", string_value=LARGE_ATTRIBUTE)])
               for i in range(1201)]
FOUR_MIB = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def fast_paths(tmp_path_factory: pytest.TempPathFactory) -> Iterable[RunningServer]:
    """A server holding the traces of the summary and chunk-size tests."""
    with running_server(server_config(tmp_path_factory.mktemp("fast"))) as s, s.channel() as channel:
        export = trace_service_pb2_grpc.TraceServiceStub(channel).Export
        export(trace_service_pb2.ExportTraceServiceRequest(resource_spans=SUMMARIZED))
        for i in range(0, len(LARGE_TRACE), 200):
            export(trace_service_pb2.ExportTraceServiceRequest(
                resource_spans=[resource_spans("bulky", LARGE_TRACE[i:i + 200])]))
        yield s


def summaries(s: RunningServer, query: pb.TraceQueryParameters) -> list[pb.TraceSummary]:
    with s.channel() as channel:
        return [t for r in reader(s, channel).FindTraceSummaries(pb.FindTraceSummariesRequest(query=query))
                for t in r.summaries]


def test_trace_summary_counts_spans_errors_services_and_orphans(fast_paths: RunningServer) -> None:
    [found] = summaries(fast_paths, pb.TraceQueryParameters(service_name="gateway"))
    assert found == pb.TraceSummary(
        trace_id=(0x51).to_bytes(16, "big"), root_service_name="gateway", root_operation_name="GET /checkout",
        min_start_time_unix_nano=NOW, max_end_time_unix_nano=NOW + 50 * MS, span_count=5, error_span_count=2,
        orphan_span_count=1, services=[pb.ServiceSummary(name="gateway", span_count=1),
                                       pb.ServiceSummary(name="orders", span_count=3, error_span_count=1),
                                       pb.ServiceSummary(name="payments", span_count=1, error_span_count=1)])


def test_trace_summary_of_a_trace_without_its_root(fast_paths: RunningServer) -> None:
    [found] = summaries(fast_paths, pb.TraceQueryParameters(service_name="worker"))
    assert found == pb.TraceSummary(
        trace_id=(0x52).to_bytes(16, "big"), min_start_time_unix_nano=NOW + 60 * MS,
        max_end_time_unix_nano=NOW + 66 * MS, span_count=2, orphan_span_count=2,
        services=[pb.ServiceSummary(name="worker", span_count=2)])


def test_trace_summaries_follow_the_search(fast_paths: RunningServer) -> None:
    """The traces FindTraceIDs finds, newest first, each summarizing the whole trace."""
    query = pb.TraceQueryParameters(operation_name="consume", search_depth=5)
    assert [t.trace_id for t in summaries(fast_paths, query)] == [(0x52).to_bytes(16, "big")]
    everything = pb.TraceQueryParameters(start_time_min=stamp(NOW - 10**9), start_time_max=stamp(NOW + 10**9))
    with fast_paths.channel() as channel:
        ids = [f.trace_id for f in reader(fast_paths, channel).FindTraceIDs(
            pb.FindTraceIDsRequest(query=everything)).trace_ids]
    found = summaries(fast_paths, everything)
    assert [t.trace_id for t in found] == ids and len(ids) == 3
    assert [t.span_count for t in found if t.trace_id == (0x60).to_bytes(16, "big")] == [1201]
    assert summaries(fast_paths, pb.TraceQueryParameters(service_name="nobody")) == []


def default_limits_channel(s: RunningServer) -> grpc.Channel:
    """A client as Jaeger's: gRPC's default 4 MiB limit on a received message."""
    return grpc.insecure_channel(s.grpc_target)


def test_v2_chunks_of_large_spans_stay_under_4_mib(fast_paths: RunningServer) -> None:
    with default_limits_channel(fast_paths) as channel:
        stub = reader(fast_paths, channel)
        got = list(stub.GetTraces(pb.GetTracesRequest(query=[pb.GetTraceParams(trace_id=(0x60).to_bytes(16, "big"))])))
        found = list(stub.FindTraces(pb.FindTracesRequest(query=pb.TraceQueryParameters(service_name="bulky"))))
    for chunks in (got, found):
        assert len(chunks) > 1 and all(c.ByteSize() < FOUR_MIB for c in chunks)
        assert sorted(s.span_id for s in spans_of(chunks)) == [(i + 1).to_bytes(8, "big") for i in range(1201)]
        assert all(s.attributes[0].value.string_value == LARGE_ATTRIBUTE for s in spans_of(chunks))


def test_v1_chunks_of_large_spans_stay_under_4_mib(fast_paths: RunningServer) -> None:
    with default_limits_channel(fast_paths) as channel:
        stub = storage_v1_grpc.SpanReaderPluginStub(channel)
        got = list(stub.GetTrace(storage_v1_pb2.GetTraceRequest(trace_id=(0x60).to_bytes(16, "big"))))
        found = list(stub.FindTraces(storage_v1_pb2.FindTracesRequest(
            query=storage_v1_pb2.TraceQueryParameters(service_name="bulky"))))
    for chunks in (got, found):
        assert len(chunks) > 1 and all(c.ByteSize() < FOUR_MIB for c in chunks)
        assert sorted(s.span_id for c in chunks for s in c.spans) == [(i + 1).to_bytes(8, "big") for i in range(1201)]


def test_v2_chunk_bound_counts_bytes_and_lets_a_huge_span_go_alone() -> None:
    from cnosdb_jaeger_storage.transport.grpc_support import MAX_CHUNK_BYTES
    from cnosdb_jaeger_storage.transport.grpc_v2 import traces_data

    huge = span(9, 2, 1, attributes=[kv("blob", string_value="y" * (MAX_CHUNK_BYTES + 10))])
    trace = [resource_spans("a", [span(9, 1), huge, span(9, 3, 1)])]
    chunks = list(traces_data(trace))
    assert [len(spans_of([c])) for c in chunks] == [1, 1, 1]
    assert spans_of(chunks) == list(trace[0].scope_spans[0].spans)


@pytest.mark.parametrize("service", [
    "", "jaeger.storage.v1.SpanReaderPlugin", "jaeger.storage.v1.SpanWriterPlugin",
    "jaeger.storage.v1.StreamingSpanWriterPlugin", "jaeger.storage.v1.DependenciesReaderPlugin",
    "jaeger.storage.v1.PluginCapabilities", "jaeger.storage.v2.TraceReader", "jaeger.storage.v2.DependencyReader",
    "jaeger.storage.v2.TraceWriter", "opentelemetry.proto.collector.trace.v1.TraceService"])
def test_health_reports_each_service_serving(server: RunningServer, service: str) -> None:
    with server.channel() as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service)).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_v1_capabilities_offer_the_streaming_writer(server: RunningServer) -> None:
    with server.channel() as channel:
        response = storage_v1_grpc.PluginCapabilitiesStub(channel).Capabilities(storage_v1_pb2.CapabilitiesRequest())
    assert response.streamingSpanWriter


def test_otlp_on_its_own_port(tmp_path: Path) -> None:
    with running_server(server_config(tmp_path, otlp_grpc_addr="127.0.0.1:0")) as s:
        with grpc.insecure_channel(f"127.0.0.1:{s.port('otlp_grpc')}") as channel:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                trace_service_pb2.ExportTraceServiceRequest(resource_spans=BATCH[:1]))
        with s.channel() as channel:
            assert list(reader(s, channel).GetServices(pb.GetServicesRequest()).services) == ["frontend"]


def test_two_instances_share_one_cnosdb(tmp_path: Path) -> None:
    """Stateless over CnosDB: write through either instance, read through the other."""
    from harness import cnosdb_lite_process

    with cnosdb_lite_process(tmp_path / "lite") as url, \
            running_server(server_config(tmp_path / "a", cnosdb_url=url)) as a, \
            running_server(server_config(tmp_path / "b", cnosdb_url=url)) as b:
        for instance, batch in ((a, BATCH[:1]), (b, BATCH[1:2])):
            with instance.channel() as channel:
                trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                    trace_service_pb2.ExportTraceServiceRequest(resource_spans=batch))
        for instance in (a, b):
            with instance.channel() as channel:
                found = list(reader(instance, channel).GetTraces(pb.GetTracesRequest(query=[
                    pb.GetTraceParams(trace_id=(1).to_bytes(16, "big"))])))
            assert len(spans_of(found)) == 3
