"""Jaeger's words for what OTLP keeps in span fields: the tag keys Jaeger shows, and the values they take.

One table for every direction: Jaeger → OTLP and back (model/jaeger_otlp.py), a Jaeger tag search → the
span-table column it must also look in (cnosdb/sql.py), and the span kinds of GetOperations (storage/store.py).
"""

from __future__ import annotations

from ..proto import trace_pb2

SERVICE_NAME = "service.name"
SPAN_KIND = "span.kind"
ERROR = "error"
STATUS_CODE = "otel.status_code"
STATUS_DESCRIPTION = "otel.status_description"
TRACE_STATE = "w3c.tracestate"
REF_TYPE = "opentracing.ref_type"
WARNINGS = "@jaeger@warnings"
EVENT = "event"
SCOPE_NAME = "otel.scope.name"
SCOPE_VERSION = "otel.scope.version"
# What OpenTelemetry's Jaeger exporters called the scope before it was a scope; searched like SCOPE_*.
LIBRARY_NAME = "otel.library.name"
LIBRARY_VERSION = "otel.library.version"

# `span.kind` tag ↔ OTLP SpanKind. SPAN_KIND_UNSPECIFIED has no tag.
KIND_BY_TAG: dict[str, trace_pb2.Span.SpanKind.ValueType] = {
    "client": trace_pb2.Span.SPAN_KIND_CLIENT,
    "server": trace_pb2.Span.SPAN_KIND_SERVER,
    "producer": trace_pb2.Span.SPAN_KIND_PRODUCER,
    "consumer": trace_pb2.Span.SPAN_KIND_CONSUMER,
    "internal": trace_pb2.Span.SPAN_KIND_INTERNAL,
}
TAG_BY_KIND = {kind: tag for tag, kind in KIND_BY_TAG.items()}

# `otel.status_code` tag ↔ OTLP StatusCode. STATUS_CODE_UNSET has no tag; `error=true` alone also means ERROR.
STATUS_BY_TAG: dict[str, trace_pb2.Status.StatusCode.ValueType] = {
    "OK": trace_pb2.Status.STATUS_CODE_OK,
    "ERROR": trace_pb2.Status.STATUS_CODE_ERROR,
}
TAG_BY_STATUS = {code: tag for tag, code in STATUS_BY_TAG.items()}


def kind_name(tag: str) -> str:
    """'server' → 'SPAN_KIND_SERVER', as the span table spells a kind (a tag that is no kind gives a name that
    no span has, so a filter by it matches nothing)."""
    return "SPAN_KIND_" + tag.upper()


def kind_tag(name: str) -> str:
    """'SPAN_KIND_SERVER' → 'server'; '' for SPAN_KIND_UNSPECIFIED or a name that is no kind."""
    try:
        return TAG_BY_KIND.get(trace_pb2.Span.SpanKind.Value(name), "")
    except ValueError:
        return ""


def status_name(tag: str) -> str | None:
    """'ERROR' → 'STATUS_CODE_ERROR', as the span table spells a status; None for a tag that is no status."""
    code = STATUS_BY_TAG.get(tag)
    return None if code is None else trace_pb2.Status.StatusCode.Name(code)
