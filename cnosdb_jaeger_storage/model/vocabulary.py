"""Jaeger's words for what OTLP keeps in span fields: the tag keys Jaeger shows, the values they take, which
OTLP value field each Jaeger value type is, and how a span's tags give its kind, status and trace state.

One table for every direction and model: Jaeger → OTLP and back (model/jaeger_otlp.py), Jaeger straight to
the span table's line protocol (cnosdb/line_protocol.py `Encoder.encode_jaeger`, which reads the same
`JaegerSpanView`), a Jaeger tag search → the span-table column it must also look in (cnosdb/sql.py), and the
span kinds of GetOperations (storage/store.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..proto import model_pb2, trace_pb2

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


# Jaeger value type → (its field in a Jaeger KeyValue, the OTLP AnyValue field it becomes). A value type this
# model does not know is carried as its text (`UNKNOWN_VALUE_FIELDS`), as OpenTelemetry does.
VALUE_FIELDS: dict[int, tuple[str, str]] = {
    model_pb2.STRING: ("v_str", "string_value"),
    model_pb2.BOOL: ("v_bool", "bool_value"),
    model_pb2.INT64: ("v_int64", "int_value"),
    model_pb2.FLOAT64: ("v_float64", "double_value"),
    model_pb2.BINARY: ("v_binary", "bytes_value"),
}
UNKNOWN_VALUE_FIELDS = VALUE_FIELDS[model_pb2.STRING]
# Jaeger value type → the OTLP AnyValue field it becomes; and back, with the Jaeger KeyValue field.
OTLP_FIELD = {vt: otlp_field for vt, (_, otlp_field) in VALUE_FIELDS.items()}
JAEGER_VALUE_OF = {otlp_field: (vt, jaeger_field) for vt, (jaeger_field, otlp_field) in VALUE_FIELDS.items()}

# A Jaeger reference that is not the parent → the `opentracing.ref_type` attribute of its OTLP link, and back.
REF_TYPE_CHILD_OF = "child_of"
REF_TYPE_FOLLOWS_FROM = "follows_from"
REF_TAG_BY_TYPE = {model_pb2.CHILD_OF: REF_TYPE_CHILD_OF, model_pb2.FOLLOWS_FROM: REF_TYPE_FOLLOWS_FROM}

# Span tags that say something an OTLP span keeps in a field of its own (kind, status, trace state).
SPECIAL_TAGS = frozenset({SPAN_KIND, ERROR, STATUS_CODE, STATUS_DESCRIPTION, TRACE_STATE})


def status_from_tags(error: bool, code_tag: str | None) -> trace_pb2.Status.StatusCode.ValueType:
    """The status code OpenTelemetry reads from a Jaeger span's tags; `otel.status_code` wins."""
    if code_tag is not None:
        code = STATUS_BY_TAG.get(code_tag)
        if code is not None:
            return code
    return trace_pb2.Status.STATUS_CODE_ERROR if error else trace_pb2.Status.STATUS_CODE_UNSET


# Jaeger tags or log fields as Python values, flat: a tag's key, value type and the value of the field that type
# names, then the next tag's. One list, not a tuple per tag: the views keep them until the write is encoded, and
# every container kept alive costs the cyclic GC a look at each of its collections.
JaegerValues = list[Any]


def each_value(values: JaegerValues) -> Iterator[tuple[str, int, Any]]:
    """(key, value type, value) of each tag or field in `values`."""
    flat = iter(values)
    return zip(flat, flat, flat, strict=True)


def jaeger_values(kvs: Iterable[model_pb2.KeyValue]) -> JaegerValues:
    """Jaeger tags or log fields as `JaegerValues`, each field read from its message once."""
    out: JaegerValues = []
    string = model_pb2.STRING
    for kv in kvs:
        vt = kv.v_type
        out += (kv.key, vt, kv.v_str if vt == string else getattr(kv, VALUE_FIELDS.get(vt, UNKNOWN_VALUE_FIELDS)[0]))
    return out


def span_tag_values(kvs: Iterable[model_pb2.KeyValue]
                    ) -> tuple[JaegerValues, trace_pb2.Span.SpanKind.ValueType, trace_pb2.Status.StatusCode.ValueType,
                               str, str]:
    """A Jaeger span's tags as its OTLP fields say them, in one pass over the tags: (its attributes as
    `JaegerValues`, kind, status code, status message, trace state).

    The first `span.kind` tag naming a kind gives the kind, and is the one tag that is no attribute;
    `otel.status_code` (first), else `error=true`, the status; the first `otel.status_description` its
    message; the first `w3c.tracestate` that is not empty the trace state."""
    out: JaegerValues = []
    kind = trace_pb2.Span.SPAN_KIND_UNSPECIFIED
    error = False
    code_tag = description = None
    trace_state = ""
    string = model_pb2.STRING
    special = SPECIAL_TAGS
    for kv in kvs:
        key = kv.key
        vt = kv.v_type
        value = kv.v_str if vt == string else getattr(kv, VALUE_FIELDS.get(vt, UNKNOWN_VALUE_FIELDS)[0])
        if key in special:
            if key == SPAN_KIND:
                # Every kind a tag names is set (not SPAN_KIND_UNSPECIFIED): unset, no tag gave it yet.
                if not kind and vt == string and value in KIND_BY_TAG:
                    kind = KIND_BY_TAG[value]
                    continue
            elif key == ERROR:
                error = error or (vt == model_pb2.BOOL and bool(value)) or (vt == string and value == "true")
            elif vt == string:
                if key == STATUS_CODE:
                    code_tag = code_tag if code_tag is not None else value
                elif key == STATUS_DESCRIPTION:
                    description = description if description is not None else value
                elif not trace_state:
                    trace_state = value
        out += (key, vt, value)
    return out, kind, status_from_tags(error, code_tag), description or "", trace_state
