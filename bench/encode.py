"""Ingest encoding speed on one core: decode a 512-span ExportTraceServiceRequest and encode it to line
protocol. The spans are bench/_synthetic.py's: 10 attributes of mixed types, one event
with two attributes, a status, five resource attributes. Prints figures only.

The embedded default's encoding too: the same spans to rows of values (`ColumnEncoder`), and on to the Arrow
batch the engine's columnar write takes (`in_process.arrow_tables`).

Then the same spans as Jaeger spans (as Jaeger v1 WriteSpan sends them, each with its process) to line
protocol: straight (`Encoder.encode_jaeger`, the server's path) and, for comparison, through OTLP messages
(`jaeger_spans_to_resource_spans`, then `Encoder.encode`); and straight to rows of values
(`ColumnEncoder.encode_jaeger`). Each Jaeger span is parsed from its bytes, as the server gets it: upb reads the
fields of a parsed message more slowly than those of one built in memory.

Run: python -m bench.encode [--requests N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from bench._synthetic import SPANS_PER_REQUEST, fill_span, resource_attributes
from cnosdb_jaeger_storage.cnosdb.in_process import arrow_tables
from cnosdb_jaeger_storage.cnosdb.line_protocol import Encoder, encode_resource_spans
from cnosdb_jaeger_storage.cnosdb.span_columns import ColumnarWrite, ColumnEncoder, TableRows
from cnosdb_jaeger_storage.model.jaeger_otlp import (
    group_by_process,
    jaeger_spans_to_resource_spans,
    resource_spans_to_jaeger,
)
from cnosdb_jaeger_storage.proto import model_pb2

BASE_TIME = 1_700_000_000_000_000_000


def make_request(seed: int) -> bytes:
    """One serialized request: 1 resource, 1 scope, 512 spans (8 per trace, a parent chain)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(resource_attributes(f"service-{seed % 20}", seed))
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
        fill_span(span, i, f"user-{(seed * 31 + i) % 5000}")
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

    columns = ColumnEncoder()

    def decode_and_columns(payload: bytes) -> TableRows:
        return columns.encode("jaeger_spans", parse(payload).resource_spans)

    def decode_columns_and_arrow(payload: bytes) -> None:
        arrow_tables([ColumnarWrite([decode_and_columns(payload)])])

    lines = encode_resource_spans("jaeger_spans", parse(payloads[0]).resource_spans)
    print(f"request: {SPANS_PER_REQUEST} spans, {len(payloads[0]) / SPANS_PER_REQUEST:.0f} B/span protobuf, "
          f"{sum(len(x) + 1 for x in lines) / len(lines):.0f} B/span line protocol")
    medians = {}
    for label, work in (("decode", parse), ("decode + encode", decode_and_encode),
                        ("decode + columns", decode_and_columns),
                        ("decode + columns + Arrow", decode_columns_and_arrow)):
        _rate(payloads, work)  # warm the caches
        rates = [_rate(payloads, work) for _ in range(args.rounds)]
        medians[label] = statistics.median(rates)
        print(f"{label:24s} {medians[label] / 1000:8.1f} k spans/s  "
              f"(min {min(rates) / 1000:.1f}, max {max(rates) / 1000:.1f}; "
              f"{1e6 / medians[label]:.2f} µs/span)")
    encode_us = 1e6 / medians["decode + encode"] - 1e6 / medians["decode"]
    print(f"{'encode alone':24s} {1e3 / encode_us:8.1f} k spans/s  ({encode_us:.2f} µs/span, by difference)")

    parse_span = model_pb2.Span.FromString
    jaeger = {payload: [parse_span(span.SerializeToString())
                        for span in resource_spans_to_jaeger(parse(payload).resource_spans)]
              for payload in payloads}
    direct, through_otlp, direct_columns = Encoder(), Encoder(), ColumnEncoder()

    def jaeger_direct(payload: bytes) -> list[str]:
        return direct.encode_jaeger("jaeger_spans", group_by_process(jaeger[payload]))

    def jaeger_through_otlp(payload: bytes) -> list[str]:
        return through_otlp.encode("jaeger_spans", jaeger_spans_to_resource_spans(jaeger[payload]))

    def jaeger_columns(payload: bytes) -> TableRows:
        return direct_columns.encode_jaeger("jaeger_spans", group_by_process(jaeger[payload]))

    assert jaeger_direct(payloads[0]) == jaeger_through_otlp(payloads[0])
    for label, work in (("Jaeger → lines, direct", jaeger_direct),
                        ("Jaeger → lines, through OTLP", jaeger_through_otlp),
                        ("Jaeger → columns, direct", jaeger_columns)):
        _rate(payloads, work)
        rates = [_rate(payloads, work) for _ in range(args.rounds)]
        median = statistics.median(rates)
        print(f"{label:30s} {median / 1000:8.1f} k spans/s  (min {min(rates) / 1000:.1f}, "
              f"max {max(rates) / 1000:.1f}; {1e6 / median:.2f} µs/span)")


if __name__ == "__main__":
    main()
