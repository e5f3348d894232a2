"""GetDependencies, read 4 hours of spans at a time (a self-join of the span table exhausts CnosDB's memory):
calls are counted whatever slice, or time before the window, the parent started in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from harness import RunningServer, running_server, server_config

from cnosdb_jaeger_storage.proto import storage_v1_grpc, storage_v1_pb2, trace_service_pb2

HOUR = 3600 * 10**9
NOW = time.time_ns() // HOUR * HOUR - HOUR  # an hour boundary: with the window 3 h long, slices start at NOW - 3 h


def request(*spans: tuple[str, int, int, int, int]) -> bytes:
    """(service, trace, span, parent, start) per span."""
    out = trace_service_pb2.ExportTraceServiceRequest()
    for service, trace, span, parent, start in spans:
        rs = out.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        rs.scope_spans.add().spans.add(
            trace_id=trace.to_bytes(16, "big"), span_id=span.to_bytes(8, "big"),
            parent_span_id=parent.to_bytes(8, "big") if parent else b"", name="op",
            start_time_unix_nano=start, end_time_unix_nano=start + 1000)
    return out.SerializeToString()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(Path(tmp_path_factory.mktemp("deps")))) as s:
        body = request(
            ("gateway", 1, 1, 0, NOW - 5 * HOUR),             # long before the window
            ("orders", 1, 2, 1, NOW - HOUR // 2),              # ... its child in it
            ("orders", 2, 3, 0, NOW - 3 * HOUR - 60 * 10**9),  # a minute before the window (a slice boundary)
            ("payments", 2, 4, 3, NOW - 3 * HOUR + 60 * 10**9),  # ... its child a minute into it
            ("payments", 2, 5, 4, NOW - 3 * HOUR + 61 * 10**9),  # same service: not a dependency
            ("orders", 3, 6, 0, NOW - 6 * HOUR),               # entirely before the window
            ("payments", 3, 7, 6, NOW - 6 * HOUR + 10**9),
        )
        reply = requests.post(s.url("otlp_http") + "/v1/traces", data=body,
                              headers={"Content-Type": "application/x-protobuf"}, timeout=30)
        assert reply.status_code == 200
        yield s


def dependencies(server: RunningServer, start: int, end: int) -> list[tuple[str, str, int]]:
    query = storage_v1_pb2.GetDependenciesRequest()
    query.start_time.FromNanoseconds(start)
    query.end_time.FromNanoseconds(end)
    with server.channel() as channel:
        found = storage_v1_grpc.DependenciesReaderPluginStub(channel).GetDependencies(query).dependencies
    return [(d.parent, d.child, d.call_count) for d in found]


def test_calls_are_counted_across_slices_and_from_parents_before_the_window(server: RunningServer) -> None:
    assert dependencies(server, NOW - 3 * HOUR, NOW) == [("gateway", "orders", 1), ("orders", "payments", 1)]


def test_a_parent_in_the_previous_slice_is_found(server: RunningServer) -> None:
    assert dependencies(server, NOW - 11 * HOUR, NOW) == [("gateway", "orders", 1), ("orders", "payments", 2)]


def test_a_window_counts_only_children_that_started_in_it(server: RunningServer) -> None:
    assert dependencies(server, NOW - 7 * HOUR, NOW - 5 * HOUR) == [("orders", "payments", 1)]
