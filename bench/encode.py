"""Ingest encoding speed on one core: decode a 512-span ExportTraceServiceRequest and encode it to line
protocol. The spans are shaped like those of docs perf-ceilings: 10 attributes of mixed types, one event
with two attributes, a status, five resource attributes. Prints figures only.

Run: python -m bench.encode [--requests N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from cnosdb_jaeger_storage.lineprotocol import encode_resource_spans

SPANS_PER_REQUEST = 512
BASE_TIME = 1_700_000_000_000_000_000


def _kv(key: str, **value: object) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def make_request(seed: int) -> bytes:
    """One serialized request: 1 resource, 1 scope, 512 spans (8 per trace, a parent chain)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([
        _kv("service.name", string_value=f"service-{seed % 20}"),
        _kv("host.name", string_value=f"host-{seed % 7}.example.internal"),
        _kv("service.version", string_value="1.4.2"),
        _kv("process.pid", int_value=4000 + seed),
        _kv("telemetry.sdk.language", string_value="python"),
    ])
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.flask"
    ss.scope.version = "0.45b0"
    parent = b""
    for i in range(SPANS_PER_REQUEST):
        trace = (seed * SPANS_PER_REQUEST + i) // 8
        if i % 8 == 0:
            parent = b""
        span = ss.spans.add()
        span.trace_id = trace.to_bytes(16, "big")
        span.span_id = (seed * SPANS_PER_REQUEST + i + 1).to_bytes(8, "big")
        span.parent_span_id = parent
        parent = span.span_id
        span.name = f"GET /api/v1/resource/{i % 40}"
        span.kind = trace_pb2.Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = BASE_TIME + (seed * SPANS_PER_REQUEST + i) * 1_000_003
        span.end_time_unix_nano = span.start_time_unix_nano + 250_000 + i * 977
        span.attributes.extend([
            _kv("http.method", string_value="GET"),
            _kv("http.url", string_value=f"https://shop.example.com/api/v1/resource/{i % 40}?page={i}"),
            _kv("http.route", string_value=f"/api/v1/resource/{i % 40}"),
            _kv("http.status_code", int_value=200 if i % 13 else 500),
            _kv("net.peer.ip", string_value=f"10.0.{i % 255}.{(i * 7) % 255}"),
            _kv("user.id", string_value=f"user-{(seed * 31 + i) % 5000}"),
            _kv("http.response_content_length", int_value=1000 + i),
            _kv("error", bool_value=i % 13 == 0),
            _kv("sampling.ratio", double_value=0.25),
            _kv("thread.name", string_value="worker-3"),
        ])
        event = span.events.add()
        event.time_unix_nano = span.start_time_unix_nano + 1000
        event.name = "cache.miss"
        event.attributes.extend([_kv("cache.key", string_value=f"k{i}"), _kv("attempt", int_value=1)])
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR if i % 13 == 0 else trace_pb2.Status.STATUS_CODE_OK
        if i % 13 == 0:
            span.status.message = "internal error"
    return request.SerializeToString()


def _rate(payloads: list[bytes], work: Callable[[bytes], object]) -> float:
    # CPU time of this process: the machines this runs on are shared, and waiting for a core is not cost.
    started = time.process_time()
    for payload in payloads:
        work(payload)
    return len(payloads) * SPANS_PER_REQUEST / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="distinct requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    payloads = [make_request(seed) for seed in range(args.requests)]
    parse = trace_service_pb2.ExportTraceServiceRequest.FromString

    def decode_and_encode(payload: bytes) -> None:
        encode_resource_spans("jaeger_spans", parse(payload).resource_spans)

    lines = encode_resource_spans("jaeger_spans", parse(payloads[0]).resource_spans)
    print(f"request: {SPANS_PER_REQUEST} spans, {len(payloads[0]) / SPANS_PER_REQUEST:.0f} B/span protobuf, "
          f"{sum(len(x) + 1 for x in lines) / len(lines):.0f} B/span line protocol")
    medians = {}
    for label, work in (("decode", parse), ("decode + encode", decode_and_encode)):
        _rate(payloads, work)  # warm the caches
        rates = [_rate(payloads, work) for _ in range(args.rounds)]
        medians[label] = statistics.median(rates)
        print(f"{label:16s} {medians[label] / 1000:8.1f} k spans/s  "
              f"(min {min(rates) / 1000:.1f}, max {max(rates) / 1000:.1f}; "
              f"{1e6 / medians[label]:.2f} µs/span)")
    encode_us = 1e6 / medians["decode + encode"] - 1e6 / medians["decode"]
    print(f"{'encode alone':16s} {1e3 / encode_us:8.1f} k spans/s  ({encode_us:.2f} µs/span, by difference)")


if __name__ == "__main__":
    main()
