"""An OpenTelemetry SDK ``SpanExporter`` that feeds a jaeger-collector 1.x through its Jaeger-native gRPC API.

This is what the (retired) OpenTelemetry Jaeger gRPC exporter did: SDK spans become Jaeger
``jaeger.api_v2.Span``s, one ``Batch`` per resource (its process), sent with
``jaeger.api_v2.CollectorService/PostSpans`` to the collector's ``--collector.grpc-server.host-port``.

* SDK spans -> OTLP: ``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans``, as the
  OTLP exporters do.
* OTLP -> Jaeger: this repository's translator, ``cnosdb_jaeger_storage.model.jaeger_otlp.resource_spans_to_jaeger``.
* The call: a generic unary gRPC call.  No Python stubs exist for Jaeger's ``collector.proto``, and its
  request is tiny, so it is encoded by hand.  From jaeger-idl ``proto/api_v2/collector.proto``:
  ``message PostSpansRequest { Batch batch = 1; }`` and ``message PostSpansResponse {}``.  The
  ``Batch`` itself is ``cnosdb_jaeger_storage.proto.model_pb2.Batch`` (``repeated Span spans = 1;
  Process process = 2;``).

Why scenario 1 needs this: jaeger-collector v1.76.0 writes spans that arrive through its OTLP receiver with
the OTLP request's context, which breaks its own pooled streaming writer (docs/e2e.md, "Scenario 1").
Spans that arrive through PostSpans are written with ``context.Background()``, so the streaming writer is
exercised there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
import pbwire
from harness import GRPC_OPTIONS
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from cnosdb_jaeger_storage.model.jaeger_otlp import resource_spans_to_jaeger
from cnosdb_jaeger_storage.proto import model_pb2

log = logging.getLogger(__name__)

POST_SPANS = "/jaeger.api_v2.CollectorService/PostSpans"


def _identity(data: bytes) -> bytes:
    return data


def post_spans_requests(spans: Sequence[ReadableSpan]) -> list[bytes]:
    """The serialized ``PostSpansRequest``s carrying ``spans``: one per resource, whose process is the
    batch's process (the spans themselves carry none, as the OpenTelemetry Jaeger exporter sent them)."""
    requests = []
    for resource_spans in encode_spans(spans).resource_spans:
        jaeger_spans = resource_spans_to_jaeger([resource_spans])
        if not jaeger_spans:
            continue
        batch = model_pb2.Batch()
        batch.process.CopyFrom(jaeger_spans[0].process)
        for span in jaeger_spans:
            span.ClearField("process")
        batch.spans.extend(jaeger_spans)
        requests.append(pbwire.f_msg(1, batch.SerializeToString()))  # PostSpansRequest.batch = 1
    return requests


class JaegerCollectorGrpcExporter(SpanExporter):
    """Exports to ``jaeger.api_v2.CollectorService/PostSpans`` at ``endpoint`` (host:port, plaintext)."""

    def __init__(self, endpoint: str, *, timeout: float = 10.0) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._channel = grpc.insecure_channel(endpoint, options=GRPC_OPTIONS)
        self._post_spans = self._channel.unary_unary(
            POST_SPANS, request_serializer=_identity, response_deserializer=_identity)
        self.requests_sent = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            for request in post_spans_requests(spans):
                self._post_spans(request, timeout=self._timeout, wait_for_ready=True)
                self.requests_sent += 1
        except grpc.RpcError as exc:
            log.error("PostSpans to %s failed: %s", self._endpoint, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._channel.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # every export() is a synchronous call
