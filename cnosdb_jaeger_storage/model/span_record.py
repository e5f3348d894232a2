"""OTLP spans as Python values: what a read builds from the span table's rows (model/span_rows.py) and what
both of its answers are made of, OTLP messages (`fill_resource_spans`, v2) and Jaeger spans
(model/jaeger_otlp.py, v1 and the query HTTP API), so that a v1 read builds no OTLP message.

Every protobuf field read or written through upb is a new Python object; values kept here are read once.
An attribute is `(key, field, value)`: the AnyValue field that is set (None for none) and its value, a Python
scalar, or for `array_value` and `kvlist_value` the AnyValue itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = [
    "Attribute",
    "EventRecord",
    "LinkRecord",
    "ResourceRecord",
    "ScopeRecord",
    "SpanRecord",
    "TraceRecords",
    "any_value",
    "attribute_of",
    "fill_resource_spans",
    "resource_record",
    "scope_record",
    "span_record",
]

Attribute = tuple[str, str | None, Any]
# AnyValue fields whose value an Attribute keeps as the AnyValue itself.
COMPOSITE = frozenset({"array_value", "kvlist_value"})


class EventRecord(NamedTuple):
    time_unix_nano: int
    name: str
    attributes: list[Attribute]
    dropped_attributes_count: int


class LinkRecord(NamedTuple):
    trace_id: bytes
    span_id: bytes
    trace_state: str
    flags: int
    attributes: list[Attribute]
    dropped_attributes_count: int


class SpanRecord:
    """An OTLP span; `status_code` 0 and `status_message` "" is no status."""

    __slots__ = ("attributes", "dropped_attributes_count", "dropped_events_count", "dropped_links_count",
                 "end_time_unix_nano", "events", "flags", "kind", "links", "name", "parent_span_id", "span_id",
                 "start_time_unix_nano", "status_code", "status_message", "trace_id", "trace_state")

    def __init__(self) -> None:
        self.trace_id = self.span_id = self.parent_span_id = b""
        self.name = self.trace_state = self.status_message = ""
        self.kind = self.flags = self.status_code = 0
        self.start_time_unix_nano = self.end_time_unix_nano = 0
        self.dropped_attributes_count = self.dropped_events_count = self.dropped_links_count = 0
        self.attributes: list[Attribute] = []
        self.events: list[EventRecord] = []
        self.links: list[LinkRecord] = []


class ResourceRecord(NamedTuple):
    attributes: list[Attribute]
    dropped_attributes_count: int
    schema_url: str  # the ResourceSpans'


class ScopeRecord(NamedTuple):
    name: str
    version: str
    attributes: list[Attribute]
    dropped_attributes_count: int
    schema_url: str  # the ScopeSpans'


# Spans grouped as ResourceSpans group them: by resource, then by scope.
TraceRecords = list[tuple[ResourceRecord, list[tuple[ScopeRecord, list[SpanRecord]]]]]


# --- messages → records ----------------------------------------------------------------------------


def attribute_of(kv: common_pb2.KeyValue) -> Attribute:
    value = kv.value
    field = value.WhichOneof("value")
    if field is None:
        return kv.key, None, None
    return kv.key, field, value if field in COMPOSITE else getattr(value, field)


def _attributes(kvs: Iterable[common_pb2.KeyValue]) -> list[Attribute]:
    return [attribute_of(kv) for kv in kvs]


def span_record(span: trace_pb2.Span) -> SpanRecord:
    out = SpanRecord()
    out.trace_id, out.span_id, out.parent_span_id = span.trace_id, span.span_id, span.parent_span_id
    out.name, out.trace_state, out.kind, out.flags = span.name, span.trace_state, span.kind, span.flags
    out.status_code, out.status_message = span.status.code, span.status.message
    out.start_time_unix_nano, out.end_time_unix_nano = span.start_time_unix_nano, span.end_time_unix_nano
    out.attributes = _attributes(span.attributes)
    out.events = [EventRecord(e.time_unix_nano, e.name, _attributes(e.attributes), e.dropped_attributes_count)
                  for e in span.events]
    out.links = [LinkRecord(link.trace_id, link.span_id, link.trace_state, link.flags, _attributes(link.attributes),
                            link.dropped_attributes_count) for link in span.links]
    out.dropped_attributes_count = span.dropped_attributes_count
    out.dropped_events_count, out.dropped_links_count = span.dropped_events_count, span.dropped_links_count
    return out


def resource_record(resource: resource_pb2.Resource, schema_url: str = "") -> ResourceRecord:
    return ResourceRecord(_attributes(resource.attributes), resource.dropped_attributes_count, schema_url)


def scope_record(scope: common_pb2.InstrumentationScope, schema_url: str = "") -> ScopeRecord:
    return ScopeRecord(scope.name, scope.version, _attributes(scope.attributes), scope.dropped_attributes_count,
                       schema_url)


# --- records → messages ----------------------------------------------------------------------------


def any_value(field: str | None, value: Any) -> common_pb2.AnyValue:
    """The AnyValue of an attribute's (field, value)."""
    if field is None:
        return common_pb2.AnyValue()
    if field in COMPOSITE:  # kept as the AnyValue message it was read as
        composite: common_pb2.AnyValue = value
        return composite
    out = common_pb2.AnyValue()
    setattr(out, field, value)
    return out


def _fill_attributes(out: Any, attributes: Iterable[Attribute]) -> None:
    add = out.add
    for key, field, value in attributes:
        if field == "string_value":
            add(key=key).value.string_value = value
        else:
            add(key=key, value=any_value(field, value))


def _fill_span(out: trace_pb2.Span, span: SpanRecord) -> None:
    out.trace_id, out.span_id, out.parent_span_id = span.trace_id, span.span_id, span.parent_span_id
    out.name, out.trace_state, out.kind, out.flags = span.name, span.trace_state, span.kind, span.flags  # type: ignore[assignment]
    if span.status_code:
        out.status.code = span.status_code  # type: ignore[assignment]
    if span.status_message:
        out.status.message = span.status_message
    out.start_time_unix_nano, out.end_time_unix_nano = span.start_time_unix_nano, span.end_time_unix_nano
    out.dropped_attributes_count = span.dropped_attributes_count
    out.dropped_events_count, out.dropped_links_count = span.dropped_events_count, span.dropped_links_count
    _fill_attributes(out.attributes, span.attributes)
    for event in span.events:
        e = out.events.add(time_unix_nano=event.time_unix_nano, name=event.name,
                           dropped_attributes_count=event.dropped_attributes_count)
        _fill_attributes(e.attributes, event.attributes)
    for link in span.links:
        m = out.links.add(trace_id=link.trace_id, span_id=link.span_id, trace_state=link.trace_state,
                          flags=link.flags, dropped_attributes_count=link.dropped_attributes_count)
        _fill_attributes(m.attributes, link.attributes)


def fill_resource_spans(records: TraceRecords) -> list[trace_pb2.ResourceSpans]:
    """The records as OTLP messages, one ResourceSpans per resource, one ScopeSpans per scope."""
    out = []
    for resource, scopes in records:
        rs = trace_pb2.ResourceSpans(schema_url=resource.schema_url)
        _fill_attributes(rs.resource.attributes, resource.attributes)
        if resource.dropped_attributes_count:
            rs.resource.dropped_attributes_count = resource.dropped_attributes_count
        for scope, spans in scopes:
            ss = rs.scope_spans.add(schema_url=scope.schema_url)
            if scope.name:
                ss.scope.name = scope.name
            if scope.version:
                ss.scope.version = scope.version
            _fill_attributes(ss.scope.attributes, scope.attributes)
            if scope.dropped_attributes_count:
                ss.scope.dropped_attributes_count = scope.dropped_attributes_count
            add = ss.spans.add
            for span in spans:
                _fill_span(add(), span)
        out.append(rs)
    return out
