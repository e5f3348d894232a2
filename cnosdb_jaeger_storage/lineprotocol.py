"""OTLP spans to line protocol, one line per span, in the layout of docs/schema.md.

This walk over protobuf objects is the ingest bottleneck (docs: perf-ceilings, about 16 µs per span for
a generic flatten), so it is fused and cached rather than going through row dicts:

- a resource's and a scope's tags and fields are escaped once and shared by all their spans (and reused
  across requests for an identical resource or scope);
- the escaped `,<column>=` fragment of every attribute key, span name and types-JSON key is cached, as
  keys and names repeat across spans;
- string attribute values, the common case, are read without `WhichOneof`.

Output is exactly what `spanrow` reads back: value texts from `spanrow.attribute_text`, names through
`quoting`. Timestamps are nanoseconds: the writer posts with `precision=ns`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from . import spanrow as col
from .quoting import lp_field_key, lp_field_string, lp_measurement, lp_tag_key, lp_tag_value

__all__ = ["encode_resource_spans", "encode_spans"]

# Caches are cleared when they reach this size, which bounds memory under high-cardinality names.
_CACHE_LIMIT = 65_536


def _tag(column: str) -> str:
    return "," + lp_tag_key(column) + "="


def _field(column: str) -> str:
    return "," + lp_field_key(column) + "="


_SERVICE = _tag(col.SERVICE_NAME)
_SCOPE_NAME = _tag(col.SCOPE_NAME)
_SCOPE_VERSION = _tag(col.SCOPE_VERSION)
_TRACE_ID = _tag(col.TRACE_ID)
_SPAN_ID = _tag(col.SPAN_ID)
_PARENT = _tag(col.PARENT_SPAN_ID)
_TRACE_STATE = _tag(col.TRACE_STATE)
_NAME = _tag(col.NAME)
_END = _field(col.END_TIME)
_DURATION = _field(col.DURATION)
_FLAGS = _field(col.FLAGS)
_STATUS_MESSAGE = _field(col.STATUS_MESSAGE)
_DROPPED_ATTRIBUTES = _field(col.SPAN_DROPPED_ATTRIBUTES)
_DROPPED_EVENTS = _field(col.DROPPED_EVENTS)
_DROPPED_LINKS = _field(col.DROPPED_LINKS)

# The kind starts the field set, so it carries no leading comma.
_KIND = {number: lp_field_key(col.KIND) + "=" + lp_field_string(name)
         for name, number in trace_pb2.Span.SpanKind.items()}
_STATUS = {number: _tag(col.STATUS_CODE) + lp_tag_value(name)
           for name, number in trace_pb2.Status.StatusCode.items() if number}

# Types JSON pieces, already escaped for a line-protocol string: `\"key\":\"int\"`.
_T_INT = ':\\"int\\"'
_T_BOOL = ':\\"bool\\"'
_T_DOUBLE = ':\\"double\\"'
_T_OTHER = {col.TYPE_BYTES: ':\\"bytes\\"', col.TYPE_ARRAY: ':\\"array\\"', col.TYPE_KVLIST: ':\\"kvlist\\"'}


def _escape_string(value: str) -> str:
    """The inside of a string field value (`lp_field_string` without the quotes)."""
    return lp_field_string(value)[1:-1]


class _Level:
    """One attribute level (span, event i, link i, …): its column prefix and its cached key fragments."""

    __slots__ = ("keys", "prefix", "types_head")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.keys: dict[str, str] = {}
        self.types_head = _field(prefix + col.ATTRIBUTE_TYPES) + '"{'

    def key(self, key: str) -> str:
        keys = self.keys
        if len(keys) >= _CACHE_LIMIT:
            keys.clear()
        fragment = keys[key] = _field(self.prefix + col.ATTRIBUTES + key) + '"'
        return fragment


_type_keys: dict[str, str] = {}


def _type_key(key: str) -> str:
    if len(_type_keys) >= _CACHE_LIMIT:
        _type_keys.clear()
    fragment = _type_keys[key] = _escape_string(json.dumps(key, ensure_ascii=False))
    return fragment


def _attributes(attributes: Any, level: _Level) -> str:
    """`,<prefix>attributes/<key>="<text>"` for each attribute, then the types field if any is needed."""
    keys = level.keys
    type_keys = _type_keys
    parts = []
    types = None
    for kv in attributes:
        key = kv.key
        fragment = keys.get(key) or level.key(key)
        value = kv.value
        text = value.string_value
        if text:
            if '"' in text or "\\" in text:
                text = _escape_string(text)
            parts.append(fragment + text + '"')
            continue
        which = value.WhichOneof("value")
        if which == "int_value":
            text = str(value.int_value)
            type_ = _T_INT
        elif which == "bool_value":
            text = "true" if value.bool_value else "false"
            type_ = _T_BOOL
        elif which == "double_value":
            text = col.double_text(value.double_value)
            type_ = _T_DOUBLE
        elif which == "string_value":
            parts.append(fragment + '"')
            continue
        elif which is None:
            # No value: nothing to store, as in CnosDB.
            continue
        else:
            text, name = col.attribute_text(value)  # type: ignore[misc]
            text = _escape_string(text)
            type_ = _T_OTHER[name]
        parts.append(fragment + text + '"')
        type_key = (type_keys.get(key) or _type_key(key)) + type_
        if types is None:
            types = [type_key]
        else:
            types.append(type_key)
    if types is not None:
        parts.append(level.types_head + ",".join(types) + '}"')
    return "".join(parts)


_SPAN_LEVEL = _Level(col.SPAN)
_EVENT_LEVELS: list[_Level] = []
_LINK_LEVELS: list[_Level] = []


def _indexed(levels: list[_Level], prefix_of: Any, index: int) -> _Level:
    while len(levels) <= index:
        levels.append(_Level(prefix_of(len(levels))))
    return levels[index]


def _events(events: Any) -> str:
    parts = []
    levels = _EVENT_LEVELS
    for index, event in enumerate(events):
        level = levels[index] if index < len(levels) else _indexed(levels, col.event_prefix, index)
        prefix = level.prefix
        parts.append(f",{prefix}{col.EVENT_TIME}={event.time_unix_nano}")
        name = event.name
        if name:
            parts.append(_field(prefix + col.EVENT_NAME) + lp_field_string(name))
        if event.attributes:
            parts.append(_attributes(event.attributes, level))
        dropped = event.dropped_attributes_count
        if dropped:
            parts.append(f",{prefix}{col.DROPPED_ATTRIBUTES}={dropped}")
    return "".join(parts)


def _links(links: Any) -> str:
    parts = []
    levels = _LINK_LEVELS
    for index, link in enumerate(links):
        level = levels[index] if index < len(levels) else _indexed(levels, col.link_prefix, index)
        prefix = level.prefix
        parts.append(f',{prefix}{col.LINK_TRACE_ID}="{link.trace_id.hex()}"'
                     f',{prefix}{col.LINK_SPAN_ID}="{link.span_id.hex()}"')
        trace_state = link.trace_state
        if trace_state:
            parts.append(_field(prefix + col.LINK_TRACE_STATE) + lp_field_string(trace_state))
        if link.attributes:
            parts.append(_attributes(link.attributes, level))
        dropped = link.dropped_attributes_count
        if dropped:
            parts.append(f",{prefix}{col.DROPPED_ATTRIBUTES}={dropped}")
        flags = link.flags
        if flags:
            parts.append(f",{prefix}{col.LINK_FLAGS}={flags}")
    return "".join(parts)


_names: dict[str, str] = {}


def _name(name: str) -> str:
    if len(_names) >= _CACHE_LIMIT:
        _names.clear()
    fragment = _names[name] = _NAME + lp_tag_value(name) if name else ""
    return fragment


def _other_attributes(attributes: Any, prefix: str, skip: str | None = None) -> tuple[str, str]:
    """Fields of resource or scope attributes (not on the hot path), and the first `skip` attribute's
    text as a tag value ("" when absent or empty)."""
    parts = []
    types: dict[str, str] = {}
    tag = None
    for kv in attributes:
        found = col.attribute_text(kv.value)
        if found is None:
            continue
        text, type_ = found
        if kv.key == skip:
            if tag is not None:
                continue
            tag = text
        else:
            parts.append(_field(prefix + col.ATTRIBUTES + kv.key) + lp_field_string(text))
        if type_:
            types.setdefault(kv.key, type_)
    if types:
        parts.append(_field(prefix + col.ATTRIBUTE_TYPES)
                     + lp_field_string(json.dumps(types, ensure_ascii=False, separators=(",", ":"))))
    return "".join(parts), lp_tag_value(tag) if tag else ""


_resources: dict[tuple[str, bytes], tuple[str, str]] = {}
_scopes: dict[tuple[str, bytes], tuple[str, str]] = {}


def _resource(resource_spans: trace_pb2.ResourceSpans) -> tuple[str, str]:
    """(tags, fields) of a resource: the service tag, and the other attributes, count and schema URL."""
    resource = resource_spans.resource
    key = (resource_spans.schema_url, resource.SerializeToString(deterministic=True))
    found = _resources.get(key)
    if found is None:
        fields, service = _other_attributes(resource.attributes, col.RESOURCE, "service.name")
        if resource.dropped_attributes_count:
            fields += f"{_field(col.RESOURCE_DROPPED_ATTRIBUTES)}{resource.dropped_attributes_count}"
        if resource_spans.schema_url:
            fields += _field(col.RESOURCE_SCHEMA_URL) + lp_field_string(resource_spans.schema_url)
        if len(_resources) >= _CACHE_LIMIT:
            _resources.clear()
        found = _resources[key] = (_SERVICE + service if service else "", fields)
    return found


def _scope(scope_spans: trace_pb2.ScopeSpans) -> tuple[str, str]:
    """(tags, fields) of an instrumentation scope and its ScopeSpans schema URL."""
    scope = scope_spans.scope
    key = (scope_spans.schema_url, scope.SerializeToString(deterministic=True))
    found = _scopes.get(key)
    if found is None:
        tags = ""
        if scope.name:
            tags += _SCOPE_NAME + lp_tag_value(scope.name)
        if scope.version:
            tags += _SCOPE_VERSION + lp_tag_value(scope.version)
        fields, _ = _other_attributes(scope.attributes, col.SCOPE)
        if scope.dropped_attributes_count:
            fields += f"{_field(col.SCOPE_DROPPED_ATTRIBUTES)}{scope.dropped_attributes_count}"
        if scope_spans.schema_url:
            fields += _field(col.SCOPE_SCHEMA_URL) + lp_field_string(scope_spans.schema_url)
        if len(_scopes) >= _CACHE_LIMIT:
            _scopes.clear()
        found = _scopes[key] = (tags, fields)
    return found


def encode_spans(head: str, tail: str, spans: Iterable[trace_pb2.Span], out: list[str]) -> None:
    """Append one line per span to `out`.

    `head` is the measurement followed by the resource and scope tags, `tail` the resource and scope
    fields; both escaped already (see `encode_resource_spans`).
    """
    append = out.append
    names = _names
    kinds = _KIND
    statuses = _STATUS
    level = _SPAN_LEVEL
    for span in spans:
        trace_id = span.trace_id
        span_id = span.span_id
        parent = span.parent_span_id
        trace_state = span.trace_state
        name = span.name
        start = span.start_time_unix_nano
        end = span.end_time_unix_nano
        status = span.status
        code = status.code
        message = status.message
        kind = span.kind

        tags = names.get(name)
        if tags is None:
            tags = _name(name)
        if trace_state:
            tags = _TRACE_STATE + lp_tag_value(trace_state) + tags
        if parent:
            tags = _PARENT + parent.hex() + tags
        if span_id:
            tags = _SPAN_ID + span_id.hex() + tags
        if trace_id:
            tags = _TRACE_ID + trace_id.hex() + tags
        if code:
            tags += statuses.get(code) or _unknown_status(code)

        fields = f"{kinds.get(kind) or _unknown_kind(kind)}{_END}{end}{_DURATION}{end - start}"
        if span.attributes:
            fields += _attributes(span.attributes, level)
        if span.events:
            fields += _events(span.events)
        if span.links:
            fields += _links(span.links)
        if message:
            fields += _STATUS_MESSAGE + lp_field_string(message)
        flags = span.flags
        if flags:
            fields += f"{_FLAGS}{flags}"
        dropped = span.dropped_attributes_count
        if dropped:
            fields += f"{_DROPPED_ATTRIBUTES}{dropped}"
        dropped = span.dropped_events_count
        if dropped:
            fields += f"{_DROPPED_EVENTS}{dropped}"
        dropped = span.dropped_links_count
        if dropped:
            fields += f"{_DROPPED_LINKS}{dropped}"
        append(f"{head}{tags} {fields}{tail} {start}")


def _unknown_status(code: int) -> str:
    return _tag(col.STATUS_CODE) + str(code)


def _unknown_kind(kind: int) -> str:
    return lp_field_key(col.KIND) + "=" + lp_field_string(str(kind))


def encode_resource_spans(table: str, resource_spans: Iterable[trace_pb2.ResourceSpans],
                          ) -> tuple[list[str], int]:
    """Line protocol for every span, one line each (no newline), and the number of spans.

    Join the lines with "\\n" to post them; any split between lines is a valid request body.
    """
    measurement = lp_measurement(table)
    lines: list[str] = []
    for rs in resource_spans:
        resource_tags, resource_fields = _resource(rs)
        for ss in rs.scope_spans:
            scope_tags, scope_fields = _scope(ss)
            encode_spans(measurement + resource_tags + scope_tags, resource_fields + scope_fields, ss.spans,
                         lines)
    return lines, len(lines)
