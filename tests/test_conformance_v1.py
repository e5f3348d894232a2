"""Storage conformance cases (tests/conformance_cases.py), through the v1 gRPC API of a running server.

The server runs on the embedded cnosdb-lite (over its HTTP API); `test_conformance_paths.py` repeats the
search cases for the other write paths. Jaeger's own fixtures are replayed by `make e2e`
(e2e/test_conformance_fixtures.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
import pytest
from conformance_cases import (
    CASES,
    EXAMPLE_OPERATIONS,
    EXAMPLE_SERVER_OPERATIONS,
    EXAMPLE_SERVICES,
    EXAMPLE_TRACE,
    TRACES,
    SearchCase,
)
from conftest import canonical_jaeger_span
from harness import RunningServer, running_server, server_config

from cnosdb_jaeger_storage.proto import model_pb2, storage_v1_grpc
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as pb

# The search traces are written a trace per request, as a collector would (on CnosDB, a column that a later
# request adds is missing from the series written before it); the example trace alone, into a store of its own.
SEARCH_TRACES = sorted(TRACES)
CASE_IDS = [c.caption for c in CASES]


def trace_of(name: str) -> model_pb2.Trace:
    return TRACES[name]


def normalized(spans: Iterable[model_pb2.Span]) -> list[bytes]:
    """Spans in a canonical order with tags, process tags and log fields sorted: Jaeger's comparison."""
    return sorted(canonical_jaeger_span(span).SerializeToString(deterministic=True) for span in spans)


def write_stream(server: RunningServer, spans: Iterable[model_pb2.Span]) -> None:
    with server.channel() as channel:
        stub = storage_v1_grpc.StreamingSpanWriterPluginStub(channel)
        stub.WriteSpanStream(pb.WriteSpanRequest(span=s) for s in spans)


def get_trace(server: RunningServer, trace_id: bytes) -> list[model_pb2.Span]:
    with server.channel() as channel:
        chunks = storage_v1_grpc.SpanReaderPluginStub(channel).GetTrace(pb.GetTraceRequest(trace_id=trace_id))
        return [span for chunk in chunks for span in chunk.spans]


def find_traces(server: RunningServer, query: pb.TraceQueryParameters) -> list[list[model_pb2.Span]]:
    """Traces as Jaeger's client rebuilds them: a new trace whenever the trace ID changes."""
    traces: list[list[model_pb2.Span]] = []
    with server.channel() as channel:
        for chunk in storage_v1_grpc.SpanReaderPluginStub(channel).FindTraces(pb.FindTracesRequest(query=query)):
            assert 0 < len(chunk.spans) <= 1000
            for span in chunk.spans:
                if not traces or traces[-1][0].trace_id != span.trace_id:
                    traces.append([])
                traces[-1].append(span)
    return traces


def query_of(case: SearchCase) -> pb.TraceQueryParameters:
    return case.query()


@pytest.fixture(scope="module")
def search_server(tmp_path_factory: pytest.TempPathFactory) -> Iterable[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("search"))) as running:
        for name in SEARCH_TRACES:
            write_stream(running, trace_of(name).spans)
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterable[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("example"))) as running:
        write_stream(running, EXAMPLE_TRACE.spans)
        yield running


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_find_traces_returns_exactly_the_expected_traces(search_server: RunningServer, case: SearchCase) -> None:
    found = find_traces(search_server, query_of(case))
    expected = [trace_of(name) for name in case.expected]
    assert sorted(normalized(s) for s in found) == sorted(normalized(t.spans) for t in expected)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_find_trace_ids_matches_find_traces(search_server: RunningServer, case: SearchCase) -> None:
    with search_server.channel() as channel:
        response = storage_v1_grpc.SpanReaderPluginStub(channel).FindTraceIDs(
            pb.FindTraceIDsRequest(query=query_of(case)))
    expected = {trace_of(name).spans[0].trace_id for name in case.expected}
    assert set(response.trace_ids) == expected


@pytest.mark.parametrize("name", SEARCH_TRACES)
def test_get_trace_round_trips_every_trace(search_server: RunningServer, name: str) -> None:
    trace = trace_of(name)
    assert normalized(get_trace(search_server, trace.spans[0].trace_id)) == normalized(trace.spans)


def test_get_trace_round_trips_the_example_trace(server: RunningServer) -> None:
    trace = EXAMPLE_TRACE
    assert normalized(get_trace(server, trace.spans[0].trace_id)) == normalized(trace.spans)


def test_get_services(server: RunningServer) -> None:
    with server.channel() as channel:
        services = storage_v1_grpc.SpanReaderPluginStub(channel).GetServices(pb.GetServicesRequest()).services
    assert set(services) >= EXAMPLE_SERVICES
    assert list(services) == sorted(set(services))


def test_get_operations(server: RunningServer) -> None:
    with server.channel() as channel:
        stub = storage_v1_grpc.SpanReaderPluginStub(channel)
        response = stub.GetOperations(pb.GetOperationsRequest(service="catalog-api"))
        server_only = stub.GetOperations(pb.GetOperationsRequest(service="catalog-api", span_kind="server"))
    assert sorted((o.name, o.span_kind) for o in response.operations) == EXAMPLE_OPERATIONS
    assert list(response.operationNames) == sorted(name for name, _ in EXAMPLE_OPERATIONS)
    assert [(o.name, o.span_kind) for o in server_only.operations] == EXAMPLE_SERVER_OPERATIONS


def test_unknown_trace_is_not_found_with_jaegers_message(server: RunningServer) -> None:
    with pytest.raises(grpc.RpcError) as error:
        get_trace(server, bytes(15) + b"\x01")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "trace not found"


def test_large_trace_of_10008_spans(server: RunningServer) -> None:
    template = EXAMPLE_TRACE.spans[0]
    spans = []
    for i in range(10_008):
        span = model_pb2.Span()
        span.CopyFrom(template)
        span.trace_id = bytes(15) + b"\x42"
        span.span_id = (i + 1).to_bytes(8, "big")
        span.start_time.FromNanoseconds(template.start_time.ToNanoseconds() + i * 1000)
        spans.append(span)
    write_stream(server, spans)
    with server.channel() as channel:
        chunks = list(storage_v1_grpc.SpanReaderPluginStub(channel).GetTrace(
            pb.GetTraceRequest(trace_id=spans[0].trace_id)))
    assert all(len(c.spans) <= 1000 and c.ByteSize() < 4 * 1024 * 1024 for c in chunks)
    assert normalized(s for c in chunks for s in c.spans) == normalized(spans)


def test_repeated_span_ids_are_all_kept(server: RunningServer) -> None:
    """Every 20th span repeats the previous span's ID, as in Jaeger's duplicate-span case."""
    template = EXAMPLE_TRACE.spans[0]
    spans = []
    for i in range(200):
        span = model_pb2.Span()
        span.CopyFrom(template)
        span.trace_id = bytes(15) + b"\x43"
        span.span_id = (i if i % 20 == 0 and i else i + 1).to_bytes(8, "big")
        span.start_time.FromNanoseconds(template.start_time.ToNanoseconds() + i * 1000)
        spans.append(span)
    write_stream(server, spans)
    assert normalized(get_trace(server, spans[0].trace_id)) == normalized(spans)


def test_writing_the_same_span_twice_stores_it_once(server: RunningServer) -> None:
    """A retried write is idempotent: CnosDB merges rows of equal series and time."""
    span = model_pb2.Span()
    span.CopyFrom(EXAMPLE_TRACE.spans[0])
    span.trace_id = bytes(15) + b"\x44"
    write_stream(server, [span])
    write_stream(server, [span])
    assert normalized(get_trace(server, span.trace_id)) == normalized([span])
