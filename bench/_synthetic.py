"""The synthetic span every benchmark sends: 10 attributes of mixed types, one event
with 2 attributes, a status; its resource has service.name and 4 more attributes."""

from __future__ import annotations

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SPANS_PER_REQUEST = 512


def kv(key: str, **value: object) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def resource_attributes(service: str, seed: int) -> list[common_pb2.KeyValue]:
    return [
        kv("service.name", string_value=service),
        kv("host.name", string_value=f"host-{seed % 7}.example.internal"),
        kv("service.version", string_value="1.4.2"),
        kv("process.pid", int_value=4000 + seed),
        kv("telemetry.sdk.language", string_value="python"),
    ]


def fill_span(span: trace_pb2.Span, i: int, user_id: str) -> None:
    """Attributes, event (at start + 1 µs) and status of the i-th span of a request."""
    span.attributes.extend([
        kv("http.method", string_value="GET"),
        kv("http.url", string_value=f"https://shop.example.com/api/v1/resource/{i % 40}?page={i}"),
        kv("http.route", string_value=f"/api/v1/resource/{i % 40}"),
        kv("http.status_code", int_value=200 if i % 13 else 500),
        kv("net.peer.ip", string_value=f"10.0.{i % 255}.{(i * 7) % 255}"),
        kv("user.id", string_value=user_id),
        kv("http.response_content_length", int_value=1000 + i),
        kv("error", bool_value=i % 13 == 0),
        kv("sampling.ratio", double_value=0.25),
        kv("thread.name", string_value="worker-3"),
    ])
    event = span.events.add()
    event.time_unix_nano = span.start_time_unix_nano + 1000
    event.name = "cache.miss"
    event.attributes.extend([kv("cache.key", string_value=f"k{i}"), kv("attempt", int_value=1)])
    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR if i % 13 == 0 else trace_pb2.Status.STATUS_CODE_OK
    if i % 13 == 0:
        span.status.message = "internal error"
