"""Jaeger `jaeger.api_v2.Span` ⇄ OTLP spans, pure functions.

Follows OpenTelemetry's Jaeger translator, arranged so that a Jaeger span converted to OTLP and back is the
span it was, tag order aside (docs/schema.md, "Jaeger ↔ OTLP"):

| Jaeger | OTLP |
|---|---|
| process service_name, tags | resource attribute `service.name`, other resource attributes |
| tag `span.kind` (`client`, `server`, `producer`, `consumer`, `internal`) | `Span.kind`; the tag is dropped |
| tags `error`, `otel.status_code`, `otel.status_description` | `Span.status`, tags kept as attributes |
| tag `w3c.tracestate` | `Span.trace_state`, tag kept as attribute |
| first CHILD_OF reference within the trace | `parent_span_id` |
| other references | links with attribute `opentracing.ref_type` |
| logs (a string field `event` names the event) | events, fields kept as attributes |
| warnings | attribute `@jaeger@warnings`, an array of strings |
| flags, start_time, duration | flags, start/end time in unix nanoseconds |

On the way back, what the attributes do not already say is added as tags, as OpenTelemetry does:
`span.kind`, `error=true` and `otel.status_code`/`otel.status_description` when the status differs from the
one the attributes give, `otel.scope.name`/`otel.scope.version`, `w3c.tracestate`; array and kvlist values
become string tags holding their OTLP/JSON.

Jaeger → OTLP is `JaegerSpanView`, the Jaeger span as the OTLP span it becomes, in Python values. The server's
Jaeger v1 writes encode the views straight to line protocol (`cnosdb.line_protocol.Encoder.encode_jaeger`);
`jaeger_spans_to_resource_spans` builds OTLP messages of the same views, for tools and tests, which check that
both give the same lines. OTLP → Jaeger reads OTLP spans as records (model/span_record.py): those a read builds
from the table's rows (`records_to_jaeger`, no OTLP message in between), or those of OTLP messages. Messages are
filled in place (`add()` and field assignment), which upb does about twice as fast as building submessages with
constructors and copying them into their parents.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..proto import common_pb2, model_pb2, resource_pb2, trace_pb2
from .ids import widen_trace_id
from .span_record import (
    ResourceRecord,
    ScopeRecord,
    SpanRecord,
    TraceRecords,
    resource_record,
    scope_record,
    span_record,
)
from .vocabulary import (
    ERROR,
    EVENT,
    JAEGER_VALUE_OF,
    OTLP_FIELD,
    REF_TAG_BY_TYPE,
    REF_TYPE,
    REF_TYPE_CHILD_OF,
    REF_TYPE_FOLLOWS_FROM,
    SCOPE_NAME,
    SCOPE_VERSION,
    SERVICE_NAME,
    SPAN_KIND,
    STATUS_CODE,
    STATUS_DESCRIPTION,
    TAG_BY_KIND,
    TAG_BY_STATUS,
    TRACE_STATE,
    UNKNOWN_VALUE_FIELDS,
    WARNINGS,
    JaegerValues,
    each_value,
    jaeger_values,
    span_tag_values,
    status_from_tags,
)

if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer as Repeated

__all__ = [
    "JaegerEvent",
    "JaegerLink",
    "JaegerSpanView",
    "ProcessGroup",
    "group_by_process",
    "jaeger_spans_to_resource_spans",
    "jaeger_tag_text",
    "otlp_span_to_jaeger",
    "process_resource",
    "records_to_jaeger",
    "resource_spans_to_jaeger",
    "resource_to_process",
    "warnings_value",
]

_NANOS = 1_000_000_000
_FIXED64_MAX = 2**64 - 1
_STRING, _BOOL, _INT64, _FLOAT64, _BINARY = (
    model_pb2.STRING,
    model_pb2.BOOL,
    model_pb2.INT64,
    model_pb2.FLOAT64,
    model_pb2.BINARY,
)
_CHILD_OF, _FOLLOWS_FROM = model_pb2.CHILD_OF, model_pb2.FOLLOWS_FROM
_UNSET = trace_pb2.Status.STATUS_CODE_UNSET
_OK = trace_pb2.Status.STATUS_CODE_OK
_ERROR = trace_pb2.Status.STATUS_CODE_ERROR


# Span attributes that need a look on the way back.
_SPECIAL_ATTRIBUTES = frozenset({ERROR, STATUS_CODE, STATUS_DESCRIPTION, TRACE_STATE, WARNINGS})


# -- IDs -----------------------------------------------------------------------------------------------


def _span_id(raw: bytes) -> bytes:
    if len(raw) != 8:
        raise ValueError(f"invalid span ID length {len(raw)}: want 8 bytes")
    return raw


# -- values --------------------------------------------------------------------------------------------


def jaeger_tag_text(value: common_pb2.AnyValue) -> str:
    """OpenTelemetry's `Value.AsString()`, as Jaeger shows arrays and maps: plain JSON (`["a",5]`)."""
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)


def _plain(value: common_pb2.AnyValue) -> object:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None if which is None else getattr(value, which)


def _add_otlp_values(out: Repeated[common_pb2.KeyValue], values: JaegerValues) -> None:
    """Append Jaeger tags or log fields to the repeated OTLP KeyValue field `out`."""
    add = out.add
    for key, vt, value in each_value(values):
        attr = add()
        attr.key = key
        setattr(attr.value, OTLP_FIELD.get(vt, UNKNOWN_VALUE_FIELDS[1]), value)


def _add_string_tag(out: Repeated[model_pb2.KeyValue], key: str, value: str) -> None:
    tag = out.add()
    tag.key = key
    tag.v_str = value


# -- Jaeger → OTLP -------------------------------------------------------------------------------------


class JaegerLink(NamedTuple):
    """A reference that is no parent, as the OTLP link it becomes."""

    trace_id: bytes  # 16 bytes
    span_id: bytes
    ref_type: str  # the link's `opentracing.ref_type` attribute


class JaegerEvent(NamedTuple):
    """A log, as the OTLP event it becomes: its fields are the event's attributes."""

    time_unix_nano: int
    name: str  # the first string field `event`, "" for none
    fields: JaegerValues


def _event_name(fields: JaegerValues) -> str:
    """The name of a log's event: its first string field `event`, "" for none."""
    for key, vt, value in each_value(fields):
        if key == EVENT and vt == _STRING:
            name: str = value
            return name
    return ""


class JaegerSpanView:
    """A Jaeger span as the OTLP span it becomes, in OTLP's field names and as Python values: the one
    translation that both `jaeger_spans_to_resource_spans` (OTLP messages) and the direct encoder
    (`cnosdb.line_protocol.Encoder.encode_jaeger`, line protocol) read. The span's attributes are
    `attributes` (its tags but the `span.kind` tag that `kind` carries), then `warnings` as an array
    attribute, if any. Each field of the message is read once: upb makes every read a new Python object.

    A view holds few containers (a span without logs, links or warnings holds one, its attributes), as the
    views of a write live until it is encoded and the cyclic GC looks at every container alive."""

    __slots__ = ("attributes", "end_time_unix_nano", "events", "flags", "kind", "links", "name", "parent_span_id",
                 "span_id", "start_time_unix_nano", "status_code", "status_message", "trace_id", "trace_state",
                 "warnings")

    def __init__(self, span: model_pb2.Span) -> None:
        """Raises ValueError for a trace ID of neither 16 nor 8 bytes or a span ID not of 8 bytes."""
        self.trace_id = trace_id = widen_trace_id(span.trace_id)
        self.span_id = _span_id(span.span_id)
        self.name = span.operation_name
        self.flags = span.flags
        (self.attributes, self.kind, self.status_code, self.status_message,
         self.trace_state) = span_tag_values(span.tags)
        warnings = span.warnings
        self.warnings: Sequence[str] = list(warnings) if warnings else ()

        parent = b""
        links: list[JaegerLink] | None = None
        for ref in span.references:
            ref_trace_id = widen_trace_id(ref.trace_id)
            ref_span_id = _span_id(ref.span_id)
            ref_type = ref.ref_type
            if not parent and ref_type == _CHILD_OF and ref_trace_id == trace_id:
                parent = ref_span_id
            else:
                link = JaegerLink(ref_trace_id, ref_span_id, REF_TAG_BY_TYPE.get(ref_type, REF_TYPE_FOLLOWS_FROM))
                if links is None:
                    links = [link]
                else:
                    links.append(link)
        self.parent_span_id = parent
        self.links: Sequence[JaegerLink] = links if links is not None else ()

        logs = span.logs
        self.events: Sequence[JaegerEvent] = [_event(log) for log in logs] if logs else ()

        start = span.start_time
        self.start_time_unix_nano = start_nanos = _fixed64(start.seconds * _NANOS + start.nanos)
        duration = span.duration
        self.end_time_unix_nano = _fixed64(start_nanos + duration.seconds * _NANOS + duration.nanos)


def _event(log: model_pb2.Log) -> JaegerEvent:
    ts = log.timestamp
    fields = jaeger_values(log.fields)
    return JaegerEvent(_fixed64(ts.seconds * _NANOS + ts.nanos), _event_name(fields), fields)


def warnings_value(warnings: Iterable[str]) -> common_pb2.AnyValue:
    """The value of a span's `@jaeger@warnings` attribute: an array of strings."""
    value = common_pb2.AnyValue()
    add = value.array_value.values.add
    for warning in warnings:
        add().string_value = warning
    return value


def _fill_otlp_span(out: trace_pb2.Span, view: JaegerSpanView) -> None:
    out.trace_id = view.trace_id
    out.span_id = view.span_id
    out.name = view.name
    out.flags = view.flags
    out.kind = view.kind

    _add_otlp_values(out.attributes, view.attributes)
    if view.warnings:
        attr = out.attributes.add()
        attr.key = WARNINGS
        attr.value.CopyFrom(warnings_value(view.warnings))

    code, message = view.status_code, view.status_message
    if code != _UNSET or message:
        out.status.code = code
        if message:
            out.status.message = message
    if view.trace_state:
        out.trace_state = view.trace_state

    if view.parent_span_id:
        out.parent_span_id = view.parent_span_id
    add_link = out.links.add
    for ref in view.links:
        link = add_link()
        link.trace_id = ref.trace_id
        link.span_id = ref.span_id
        attr = link.attributes.add()
        attr.key = REF_TYPE
        attr.value.string_value = ref.ref_type

    add_event = out.events.add
    for log in view.events:
        event = add_event()
        event.time_unix_nano = log.time_unix_nano
        if log.name:
            event.name = log.name
        _add_otlp_values(event.attributes, log.fields)

    out.start_time_unix_nano = view.start_time_unix_nano
    out.end_time_unix_nano = view.end_time_unix_nano


def _fixed64(ns: int) -> int:
    """Unix ns in OTLP's unsigned fixed64: before 1970 is 0, beyond 2^64 - 1 is 2^64 - 1 (which the storage
    API then refuses by name, as any time beyond CnosDB's range)."""
    return ns if 0 <= ns <= _FIXED64_MAX else min(max(0, ns), _FIXED64_MAX)


class ProcessGroup(NamedTuple):
    """The spans of one distinct Jaeger process, in their order, and the OTLP resource of that process: the
    ResourceSpans they become. The resource is shared with other groups of that process (`group_by_process`
    keeps it): read it, do not change it."""

    resource: resource_pb2.Resource
    spans: list[JaegerSpanView]


def group_by_process(spans: Iterable[model_pb2.Span], process: model_pb2.Process | None = None
                     ) -> list[ProcessGroup]:
    """Jaeger spans as views, grouped by distinct process in the order processes first appear. A span
    without a process of its own takes `process` (a Batch's process).

    Raises ValueError for a trace ID of neither 16 nor 8 bytes or a span ID not of 8 bytes.
    """
    fallback = process if process is not None else model_pb2.Process()
    groups: dict[bytes, ProcessGroup] = {}
    resources = _resources
    for span in spans:
        span_process = span.process
        # A process has no map field: its serialized form is the same without `deterministic`, which costs.
        key = span_process.SerializeToString()
        if not key and not span.HasField("process"):
            span_process = fallback
            key = fallback.SerializeToString()
        group = groups.get(key)
        if group is None:
            resource = resources.get(key)
            if resource is None:
                if len(resources) >= _RESOURCE_CACHE_LIMIT:
                    resources.clear()
                resource = resources[key] = process_resource(span_process)
            group = groups[key] = ProcessGroup(resource, [])
        group.spans.append(JaegerSpanView(span))
    return list(groups.values())


# The resource of each process `group_by_process` met, by the process's serialized form: a server sees the same
# few processes again and again. Cleared when full, which bounds its memory.
_resources: dict[bytes, resource_pb2.Resource] = {}
_RESOURCE_CACHE_LIMIT = 1024


def jaeger_spans_to_resource_spans(
    spans: Iterable[model_pb2.Span], process: model_pb2.Process | None = None
) -> list[trace_pb2.ResourceSpans]:
    """Jaeger spans as OTLP: one ResourceSpans per distinct process, each with one ScopeSpans whose scope is
    empty. A span without a process of its own takes `process` (a Batch's process).

    Raises ValueError for a trace ID of neither 16 nor 8 bytes or a span ID not of 8 bytes.
    """
    out: list[trace_pb2.ResourceSpans] = []
    for group in group_by_process(spans, process):
        rs = trace_pb2.ResourceSpans()
        rs.resource.CopyFrom(group.resource)
        scope_spans = rs.scope_spans.add()
        scope_spans.scope.SetInParent()
        add = scope_spans.spans.add
        for view in group.spans:
            _fill_otlp_span(add(), view)
        out.append(rs)
    return out


def process_resource(process: model_pb2.Process) -> resource_pb2.Resource:
    """The OTLP resource of a Jaeger process: `service.name` (when the process names a service), then its
    tags."""
    out = resource_pb2.Resource()
    if process.service_name:
        attr = out.attributes.add()
        attr.key = SERVICE_NAME
        attr.value.string_value = process.service_name
    _add_otlp_values(out.attributes, jaeger_values(process.tags))
    return out


# -- OTLP → Jaeger -------------------------------------------------------------------------------------
#
# From OTLP spans as records (model/span_record.py): those a read builds from rows (`records_to_jaeger`), or
# those of OTLP messages (`resource_spans_to_jaeger`, `otlp_span_to_jaeger`, `resource_to_process`).


def resource_to_process(resource: resource_pb2.Resource) -> model_pb2.Process:
    """The Jaeger process of a resource: `service.name` (a string) is the service, the rest are tags."""
    return _process(resource_record(resource))


def _process(resource: ResourceRecord) -> model_pb2.Process:
    process = model_pb2.Process()
    add = process.tags.add
    service = ""
    for key, field, value in resource.attributes:
        if not service and key == SERVICE_NAME and field == "string_value":
            process.service_name = service = value
        else:
            _set_jaeger_value(add(), key, field, value)
    return process


def _set_jaeger_value(tag: model_pb2.KeyValue, key: str, field: str | None, value: Any) -> None:
    tag.key = key
    if field == "string_value":
        tag.v_str = value
        return
    found = JAEGER_VALUE_OF.get(field)  # type: ignore[arg-type]
    if found is not None:
        tag.v_type, jaeger_field = found  # type: ignore[assignment]
        setattr(tag, jaeger_field, value)
    elif field is not None:
        # array and kvlist have no Jaeger type; OpenTelemetry writes them as text.
        tag.v_str = jaeger_tag_text(value)


def _scope_tags(scope: ScopeRecord) -> list[tuple[str, str]]:
    tags = []
    if scope.name:
        tags.append((SCOPE_NAME, scope.name))
    if scope.version:
        tags.append((SCOPE_VERSION, scope.version))
    return tags


def _warning_text(value: common_pb2.AnyValue) -> str:
    if value.WhichOneof("value") == "string_value":
        return value.string_value
    return jaeger_tag_text(value)


def _to_jaeger_span(span: SpanRecord, process: model_pb2.Process, scope_tags: list[tuple[str, str]]
                    ) -> model_pb2.Span:
    trace_id = span.trace_id
    out = model_pb2.Span(
        trace_id=trace_id, span_id=span.span_id, operation_name=span.name, flags=span.flags
    )
    out.process.CopyFrom(process)

    tags = out.tags
    add = tags.add
    error_seen = code_seen = description_seen = trace_state_seen = error = False
    code_tag = None
    for key, field, value in span.attributes:
        if key in _SPECIAL_ATTRIBUTES:
            if key == WARNINGS:
                if field == "array_value":
                    out.warnings.extend([_warning_text(v) for v in value.array_value.values])
                    continue
            elif key == ERROR:
                error_seen = True
                error = error or (field == "bool_value" and value) or (field == "string_value" and value == "true")
            elif key == STATUS_CODE:
                code_seen = True
                if code_tag is None and field == "string_value":
                    code_tag = value
            elif key == STATUS_DESCRIPTION:
                description_seen = True
            else:
                trace_state_seen = True
        _set_jaeger_value(add(), key, field, value)

    kind_tag = TAG_BY_KIND.get(span.kind)  # type: ignore[call-overload]
    if kind_tag is not None:
        _add_string_tag(tags, SPAN_KIND, kind_tag)
    # Status tags are added only where the attributes, read as Jaeger tags, would give another status: a
    # Jaeger span's own tags then come back as they were, and an OTLP span gets what OpenTelemetry adds.
    code = span.status_code
    if code != _UNSET and code != status_from_tags(error, code_tag):
        if code == _ERROR and not error_seen:
            tag = add()
            tag.key = ERROR
            tag.v_type = _BOOL
            tag.v_bool = True
        if not code_seen:
            _add_string_tag(tags, STATUS_CODE, TAG_BY_STATUS.get(code, str(code)))  # type: ignore[call-overload]
    if span.status_message and not description_seen:
        _add_string_tag(tags, STATUS_DESCRIPTION, span.status_message)
    if span.trace_state and not trace_state_seen:
        _add_string_tag(tags, TRACE_STATE, span.trace_state)
    for key, text in scope_tags:
        _add_string_tag(tags, key, text)

    add_ref = out.references.add
    if span.parent_span_id:
        ref = add_ref()
        ref.trace_id = trace_id
        ref.span_id = span.parent_span_id
    for link in span.links:
        ref = add_ref()
        ref.trace_id = link.trace_id
        ref.span_id = link.span_id
        ref.ref_type = _FOLLOWS_FROM
        for key, field, value in link.attributes:
            if key == REF_TYPE:
                if field == "string_value" and value == REF_TYPE_CHILD_OF:
                    ref.ref_type = _CHILD_OF
                break

    add_log = out.logs.add
    for event in span.events:
        log = add_log()
        ts = log.timestamp
        ts.seconds, ts.nanos = divmod(event.time_unix_nano, _NANOS)
        fields = log.fields
        add_field = fields.add
        named = not event.name
        for key, field, value in event.attributes:
            if not named and key == EVENT:
                named = True
            _set_jaeger_value(add_field(), key, field, value)
        if not named:
            _add_string_tag(fields, EVENT, event.name)

    start = span.start_time_unix_nano
    ts = out.start_time
    ts.seconds, ts.nanos = divmod(start, _NANOS)
    end = span.end_time_unix_nano
    nanos = end - start if end else 0
    # Duration wants seconds and nanos of one sign.
    seconds, rest = divmod(abs(nanos), _NANOS)
    duration = out.duration
    if nanos < 0:
        duration.seconds, duration.nanos = -seconds, -rest
    else:
        duration.seconds, duration.nanos = seconds, rest
    return out


def otlp_span_to_jaeger(
    span: trace_pb2.Span,
    resource: resource_pb2.Resource,
    scope: common_pb2.InstrumentationScope,
    *,
    process: model_pb2.Process | None = None,
) -> model_pb2.Span:
    """A Jaeger span of an OTLP span, with `process` populated (from `resource`, unless the caller passes the
    process it already built from it) and `process_id` empty."""
    if process is None:
        process = resource_to_process(resource)
    return _to_jaeger_span(span_record(span), process, _scope_tags(scope_record(scope)))


def resource_spans_to_jaeger(resource_spans: Iterable[trace_pb2.ResourceSpans]) -> list[model_pb2.Span]:
    """Every span of `resource_spans` as a Jaeger span, in order; each resource and scope is converted
    once."""
    return records_to_jaeger(
        [(resource_record(rs.resource), [(scope_record(ss.scope), [span_record(span) for span in ss.spans])
                                         for ss in rs.scope_spans])
         for rs in resource_spans])


def records_to_jaeger(records: TraceRecords) -> list[model_pb2.Span]:
    """Every span of `records` (model/span_record.py) as a Jaeger span, in order; each resource and scope is
    converted once."""
    out = []
    for resource, scopes in records:
        process = _process(resource)
        for scope, spans in scopes:
            scope_tags = _scope_tags(scope)
            out.extend([_to_jaeger_span(span, process, scope_tags) for span in spans])
    return out
