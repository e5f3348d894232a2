"""v1 writer behaviour that Jaeger's collector relies on, beyond the conformance cases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from harness import RunningServer, running_server, server_config

from cnosdb_jaeger_storage.proto import model_pb2, storage_v1_grpc
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as pb

NOW = time.time_ns() - 60 * 10**9


def jaeger_span(trace: int, span_id: int) -> model_pb2.Span:
    span = model_pb2.Span(trace_id=trace.to_bytes(16, "big"), span_id=span_id.to_bytes(8, "big"),
                          operation_name="op", process=model_pb2.Process(service_name="svc"))
    span.start_time.FromNanoseconds(NOW + span_id)
    span.duration.FromNanoseconds(1000)
    return span


def trace_spans(server: RunningServer, trace: int) -> list[model_pb2.Span]:
    with server.channel() as channel:
        stub = storage_v1_grpc.SpanReaderPluginStub(channel)
        try:
            return [s for c in stub.GetTrace(pb.GetTraceRequest(trace_id=trace.to_bytes(16, "big"))) for s in c.spans]
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            return []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path)) as s:
        yield s


def test_spans_of_a_stream_the_client_cancels_are_still_written(server: RunningServer) -> None:
    """Jaeger's streaming client counts a span as saved once sent, and cancels streams with their request."""
    sent = threading.Event()
    hold = threading.Event()

    def requests() -> Iterator[pb.WriteSpanRequest]:
        for i in range(1, 6):
            yield pb.WriteSpanRequest(span=jaeger_span(7, i))
        sent.set()
        hold.wait(10)

    with server.channel() as channel:
        call = storage_v1_grpc.StreamingSpanWriterPluginStub(channel).WriteSpanStream.future(requests())
        assert sent.wait(10)
        time.sleep(0.2)  # let the server receive them
        call.cancel()
        hold.set()
    deadline = time.monotonic() + 10
    while len(trace_spans(server, 7)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(int.from_bytes(s.span_id, "big") for s in trace_spans(server, 7)) == [1, 2, 3, 4, 5]


def test_spans_are_readable_while_the_stream_stays_open(server: RunningServer) -> None:
    more = threading.Event()

    def requests() -> Iterator[pb.WriteSpanRequest]:
        yield pb.WriteSpanRequest(span=jaeger_span(8, 1))
        more.wait(10)

    with server.channel() as channel:
        call = storage_v1_grpc.StreamingSpanWriterPluginStub(channel).WriteSpanStream.future(requests())
        deadline = time.monotonic() + 10
        while not trace_spans(server, 8) and time.monotonic() < deadline:
            time.sleep(0.05)
        found = trace_spans(server, 8)
        more.set()
        call.result(10)
    assert [s.span_id for s in found] == [(1).to_bytes(8, "big")]


def test_write_span_is_acknowledged_once_readable(server: RunningServer) -> None:
    with server.channel() as channel:
        storage_v1_grpc.SpanWriterPluginStub(channel).WriteSpan(pb.WriteSpanRequest(span=jaeger_span(9, 1)))
        storage_v1_grpc.SpanWriterPluginStub(channel).Close(pb.CloseWriterRequest())
    assert len(trace_spans(server, 9)) == 1


@pytest.mark.parametrize("trace_id", [b"", b"\x01" * 7, b"\x01" * 17], ids=["empty", "7-bytes", "17-bytes"])
def test_malformed_trace_id_is_invalid_argument(server: RunningServer, trace_id: bytes) -> None:
    span = jaeger_span(1, 1)
    span.trace_id = trace_id
    with server.channel() as channel, pytest.raises(grpc.RpcError) as error:
        storage_v1_grpc.SpanWriterPluginStub(channel).WriteSpan(pb.WriteSpanRequest(span=span))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
