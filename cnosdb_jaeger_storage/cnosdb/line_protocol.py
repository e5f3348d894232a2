"""OTLP spans, and Jaeger spans (`Encoder.encode_jaeger`), to line protocol, one line per span, in the layout of
docs/schema.md.

This walk over protobuf objects is the ingest bottleneck (measured here: about 16 µs per span for
a generic flatten), so it is fused and cached rather than going through row dicts:

- a resource's and a scope's tags and fields are escaped once and shared by all their spans (and reused
  across requests for an identical resource or scope);
- the escaped `,<column>=` fragment of every attribute key, span name and types-JSON key is cached, as
  keys and names repeat across spans;
- string attribute values, the common case, are read without `WhichOneof`.

Output is exactly what `span_rows` reads back: value texts from `span_rows.attribute_text`, names through
`quoting`. Timestamps are nanoseconds: the writer posts with `precision=ns`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from ..model import span_rows as col
from ..model import vocabulary
from ..model.jaeger_otlp import JaegerSpanView, ProcessGroup, warnings_value
from ..model.stored_names import stored_name
from ..model.vocabulary import JaegerValue
from ..proto import model_pb2
from .quoting import lp_field_key, lp_field_string, lp_measurement, lp_tag_key, lp_tag_value

__all__ = ["AttributeBudget", "Encoder", "encode_resource_spans"]

# Caches are cleared when they reach this size, which bounds memory under high-cardinality names.
_CACHE_LIMIT = 65_536
# Resources and scopes are cached by their serialized form, which can be large: keep fewer.
_GROUP_CACHE_LIMIT = 1024


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
_KIND_TAG = {number: _tag(col.KIND_TAG) + lp_tag_value(name) for name, number in trace_pb2.Span.SpanKind.items()}

# Types JSON pieces, already escaped for a line-protocol string: `\"key\":\"int\"`.
_T_INT = col.TYPE_INT
_T_BOOL = col.TYPE_BOOL
_T_DOUBLE = col.TYPE_DOUBLE
_T_OTHER = {t: t for t in (col.TYPE_BYTES, col.TYPE_ARRAY, col.TYPE_KVLIST)}


def _escape_string(value: str) -> str:
    """The inside of a string field value (`lp_field_string` without the quotes)."""
    return lp_field_string(value)[1:-1]


_UNLIMITED = sys.maxsize


class AttributeBudget:
    """Which attributes get a column of their own (docs/schema.md, "Attributes beyond the budget").

    - `per_level`: the first so many attributes of each level (a resource, a scope, a span, each event,
      each link), in their order; the rest overflow.
    - `columns`: the attribute columns a table may hold (the `service.name` tag aside). `known` is the set
      of the table's attribute columns as far as this process knows (DESCRIBE, and what its own writes
      add); once it holds `columns` of them, an attribute whose column is not known overflows.

    None is no limit. Overflowing attributes are not lost: they go to the level's overflow column.
    """

    def __init__(self, per_level: int | None = None, columns: int | None = None) -> None:
        self.per_level = _UNLIMITED if per_level is None else max(0, per_level)
        self.columns = _UNLIMITED if columns is None else max(0, columns)
        self.known: set[str] = set()

    @property
    def limits_columns(self) -> bool:
        return self.columns != _UNLIMITED

    def learn(self, columns: Iterable[str]) -> None:
        """Columns the table has (from DESCRIBE): the attribute columns among them count from now on."""
        if self.columns != _UNLIMITED:
            match = col.ATTRIBUTE_COLUMN.fullmatch
            self.known.update(c for c in columns if match(c) and c != col.SERVICE_NAME)

    def forget(self) -> None:
        """The table was dropped."""
        self.known.clear()

    def admit(self, column: str) -> bool:
        """Whether attribute column `column` (stored form) may be written; True adds it to `known`."""
        known = self.known
        if self.columns == _UNLIMITED or column in known:
            return True
        if len(known) < self.columns:
            known.add(column)
            return True
        return False


class _Level:
    """One attribute level (span, event i, link i): its column prefix, cached key fragments, and the
    escaped `,<column>=` heads of its other columns.

    `keys` caches the fragment of every key whose column the budget admitted; a key not in it is asked of
    the budget (`key`), so a span whose keys all have columns costs no more than without a budget.
    """

    __slots__ = ("budget", "counts", "dropped", "exact_time", "flags", "keys", "label", "name", "overflow_head",
                 "per_level", "prefix", "span_id", "time", "trace_id", "trace_state", "types_head")

    def __init__(self, prefix: str, budget: AttributeBudget, label: str, counts: dict[str, int]) -> None:
        self.prefix = prefix
        self.keys: dict[str, str] = {}
        self.budget = budget
        self.per_level = budget.per_level
        self.label = label
        self.counts = counts
        self.overflow_head = _field(prefix + col.ATTRIBUTES_OVERFLOW) + '"'
        self.types_head = _field(prefix + col.ATTRIBUTE_TYPES) + '"'
        self.dropped = _field(prefix + col.DROPPED_ATTRIBUTES)
        self.time = _field(prefix + col.EVENT_TIME)
        self.exact_time = _field(prefix + col.EVENT_TIME_EXACT)
        self.name = _field(prefix + col.EVENT_NAME)
        self.trace_id = _field(prefix + col.LINK_TRACE_ID) + '"'
        self.span_id = '"' + _field(prefix + col.LINK_SPAN_ID) + '"'
        self.trace_state = _field(prefix + col.LINK_TRACE_STATE)
        self.flags = _field(prefix + col.LINK_FLAGS)

    def key(self, key: str) -> str | None:
        """The `,<column>="` fragment of `key`, or None when the budget has no column for it."""
        if not self.budget.admit(self.prefix + col.ATTRIBUTES + stored_name(key)):
            return None
        keys = self.keys
        if len(keys) >= _CACHE_LIMIT:
            keys.clear()
        fragment = keys[key] = _field(self.prefix + col.ATTRIBUTES + key) + '"'
        return fragment


_type_keys: dict[str, str] = {}


def _type_key(key: str) -> str:
    if len(_type_keys) >= _CACHE_LIMIT:
        _type_keys.clear()
    fragment = _type_keys[key] = col.type_key(key)
    return fragment


def _attributes(attributes: Any, level: _Level, parts: list[str]) -> None:
    """Append `,<prefix>attributes/<key>="<text>"` for each attribute, then the types field if needed, then
    the overflow field for the attributes beyond the budget, if any."""
    keys = level.keys
    append = parts.append
    types = None
    overflow = tail = None
    if len(attributes) > level.per_level:
        tail = attributes[level.per_level:]
        attributes = attributes[:level.per_level]
    for kv in attributes:
        key = kv.key
        head = keys.get(key) or level.key(key)
        if head is None:
            if overflow is None:
                overflow = [kv]
            else:
                overflow.append(kv)
            continue
        value = kv.value
        text = value.string_value
        if text:
            if '"' in text or "\\" in text:
                text = _escape_string(text)
            append(f'{head}{text}"')
            continue
        which = value.WhichOneof("value")
        if which == "int_value":
            text = str(value.int_value)
            type_ = _T_INT
        elif which == "bool_value":
            text = "true" if value.bool_value else "false"
            type_ = _T_BOOL
        elif which == "double_value":
            text = _double_text(value.double_value)
            type_ = _T_DOUBLE
        elif which == "string_value":
            append(f'{head}"')
            continue
        elif which is None:
            # No value: nothing to store, as in CnosDB.
            continue
        else:
            text, name = col.attribute_text(value)  # type: ignore[misc]  # `which` is set: a pair, never None
            text = _escape_string(text)
            type_ = _T_OTHER[name]
        append(f'{head}{text}"')
        if types is None:
            types = [(_type_keys.get(key) or _type_key(key)) + type_]
        else:
            types.append((_type_keys.get(key) or _type_key(key)) + type_)
    if types is not None:
        append(f'{level.types_head}{",".join(types)}"')
    if overflow is not None or tail is not None:
        _overflow([*(overflow or ()), *(tail or ())], level, parts)


def _overflow(attributes: list[Any], level: _Level, parts: list[str]) -> None:
    """The overflow field of a level: its attributes beyond the budget, in their order."""
    _overflow_cell([e for e in (col.overflow_entry(kv.key, kv.value) for kv in attributes) if e is not None],
                   level, parts)


def _overflow_cell(entries: list[str], level: _Level, parts: list[str]) -> None:
    """The overflow field of a level holding `entries` (`span_rows.overflow_entry`), if any."""
    if entries:
        # The cell holds no backslash (span_rows.overflow_entry), so quotes are all there is to escape.
        parts.append(level.overflow_head + col.encode_overflow(entries).replace('"', '\\"') + '"')
        level.counts[level.label] = level.counts.get(level.label, 0) + len(entries)


_double_text = col.double_text


class Encoder:
    """OTLP to line protocol under an attribute budget, with the caches that make it fast.

    One per table (its `AttributeBudget` knows that table's columns). `overflowed` counts, by level, the
    attributes that went to an overflow column since `take_overflowed` was last called.
    """

    def __init__(self, budget: AttributeBudget | None = None) -> None:
        self.budget = budget if budget is not None else AttributeBudget()
        self.overflowed: dict[str, int] = {}
        self.span_level = _Level(col.SPAN, self.budget, "span", self.overflowed)
        self.event_levels: dict[int, _Level] = {}
        self.link_levels: dict[int, _Level] = {}
        self.resources: dict[tuple[str, bytes], tuple[str, str, int]] = {}
        self.scopes: dict[tuple[str, bytes], tuple[str, str, int]] = {}

    def reset(self) -> None:
        """Forget every cached key (the table was dropped: its columns are gone)."""
        self.budget.forget()
        self.span_level.keys.clear()
        self.event_levels.clear()
        self.link_levels.clear()
        self.resources.clear()
        self.scopes.clear()

    def take_overflowed(self) -> dict[str, int]:
        counts = dict(self.overflowed)
        self.overflowed.clear()
        return counts

    def encode(self, table: str, resource_spans: Iterable[trace_pb2.ResourceSpans]) -> list[str]:
        """Line protocol for every span, one line per span (without newline), in input order.

        Join lines with "\\n" to post them; any split between lines is a valid request body.
        """
        measurement = lp_measurement(table)
        lines: list[str] = []
        counts = self.overflowed
        for rs in resource_spans:
            resource_tags, resource_fields, resource_overflow = self._resource(rs)
            for ss in rs.scope_spans:
                scope_tags, scope_fields, scope_overflow = self._scope(ss)
                before = len(lines)
                _encode_spans(self, measurement + resource_tags + scope_tags, resource_fields + scope_fields,
                              ss.spans, lines)
                spans = len(lines) - before
                if resource_overflow and spans:
                    counts["resource"] = counts.get("resource", 0) + resource_overflow * spans
                if scope_overflow and spans:
                    counts["scope"] = counts.get("scope", 0) + scope_overflow * spans
        return lines

    def event_level(self, index: int) -> _Level:
        level = self.event_levels[index] = _Level(col.event_prefix(index), self.budget, "event", self.overflowed)
        return level

    def link_level(self, index: int) -> _Level:
        level = self.link_levels[index] = _Level(col.link_prefix(index), self.budget, "link", self.overflowed)
        return level

    def _other_attributes(self, attributes: Any, prefix: str, skip: str | None = None) -> tuple[str, str, int]:
        """Fields of resource or scope attributes (not on the hot path), the first `skip` attribute's text
        as a tag value ("" when absent or empty), and how many attributes overflowed."""
        parts = []
        types: dict[str, str] = {}
        overflow: list[str] = []
        tag = None
        budget = self.budget
        counted = 0
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
                counted += 1
                if counted > budget.per_level or not budget.admit(prefix + col.ATTRIBUTES + stored_name(kv.key)):
                    overflow.append(col.overflow_entry(kv.key, kv.value))  # type: ignore[arg-type]  # `text` was set: never None
                    continue
                parts.append(_field(prefix + col.ATTRIBUTES + kv.key) + lp_field_string(text))
            if type_:
                types.setdefault(kv.key, type_)
        if types:
            parts.append(_field(prefix + col.ATTRIBUTE_TYPES) + lp_field_string(col.encode_types(types.items())))
        if overflow:
            parts.append(_field(prefix + col.ATTRIBUTES_OVERFLOW) + lp_field_string(col.encode_overflow(overflow)))
        return "".join(parts), lp_tag_value(tag) if tag else "", len(overflow)

    def encode_jaeger(self, table: str, groups: Iterable[ProcessGroup]) -> list[str]:
        """`encode` of Jaeger spans without OTLP messages: their views grouped by process, with its resource
        (`jaeger_otlp.group_by_process`).

        The lines are those `encode` gives for `jaeger_otlp.jaeger_spans_to_resource_spans` of the same spans
        (tests/test_jaeger_lines.py): both read the one translation, `JaegerSpanView`.
        """
        measurement = lp_measurement(table)
        scope_tags, scope_fields, scope_overflow = self._scope(_NO_SCOPE)
        lines: list[str] = []
        counts = self.overflowed
        for resource, spans in groups:
            resource_tags, resource_fields, resource_overflow = self._resource_of(resource, "")
            _encode_jaeger_spans(self, measurement + resource_tags + scope_tags, resource_fields + scope_fields,
                                 spans, lines)
            if resource_overflow and spans:
                counts["resource"] = counts.get("resource", 0) + resource_overflow * len(spans)
            if scope_overflow and spans:
                counts["scope"] = counts.get("scope", 0) + scope_overflow * len(spans)
        return lines

    def _resource(self, resource_spans: trace_pb2.ResourceSpans) -> tuple[str, str, int]:
        return self._resource_of(resource_spans.resource, resource_spans.schema_url)

    def _resource_of(self, resource: Resource, schema_url: str) -> tuple[str, str, int]:
        """(tags, fields, overflowed) of a resource: the service tag, and the other attributes, count and
        schema URL."""
        key = (schema_url, resource.SerializeToString(deterministic=True))
        resources = self.resources
        found = resources.get(key)
        if found is None:
            fields, service, overflowed = self._other_attributes(resource.attributes, col.RESOURCE, "service.name")
            if resource.dropped_attributes_count:
                fields += f"{_field(col.RESOURCE_DROPPED_ATTRIBUTES)}{resource.dropped_attributes_count}"
            if schema_url:
                fields += _field(col.RESOURCE_SCHEMA_URL) + lp_field_string(schema_url)
            if len(resources) >= _GROUP_CACHE_LIMIT:
                resources.clear()
            found = resources[key] = (_SERVICE + service if service else "", fields, overflowed)
        return found

    def _scope(self, scope_spans: trace_pb2.ScopeSpans) -> tuple[str, str, int]:
        """(tags, fields, overflowed) of an instrumentation scope and its ScopeSpans schema URL."""
        scope = scope_spans.scope
        key = (scope_spans.schema_url, scope.SerializeToString(deterministic=True))
        scopes = self.scopes
        found = scopes.get(key)
        if found is None:
            tags = ""
            if scope.name:
                tags += _SCOPE_NAME + lp_tag_value(scope.name)
            if scope.version:
                tags += _SCOPE_VERSION + lp_tag_value(scope.version)
            fields, _, overflowed = self._other_attributes(scope.attributes, col.SCOPE)
            if scope.dropped_attributes_count:
                fields += f"{_field(col.SCOPE_DROPPED_ATTRIBUTES)}{scope.dropped_attributes_count}"
            if scope_spans.schema_url:
                fields += _field(col.SCOPE_SCHEMA_URL) + lp_field_string(scope_spans.schema_url)
            if len(scopes) >= _GROUP_CACHE_LIMIT:
                scopes.clear()
            found = scopes[key] = (tags, fields, overflowed)
        return found


def _events(encoder: Encoder, events: Any, parts: list[str]) -> None:
    levels = encoder.event_levels
    append = parts.append
    for index, event in enumerate(events):
        level = levels.get(index) or encoder.event_level(index)
        event_time = event.time_unix_nano
        append(f"{level.time}{event_time}")
        if float(event_time) != event_time:  # CnosDB's DOUBLE column cannot hold it exactly
            append(f"{level.exact_time}{event_time}i")
        name = event.name
        if name:
            append(level.name + lp_field_string(name))
        attributes = event.attributes
        if attributes:
            _attributes(attributes, level, parts)
        dropped = event.dropped_attributes_count
        if dropped:
            append(f"{level.dropped}{dropped}")


def _links(encoder: Encoder, links: Any, parts: list[str]) -> None:
    levels = encoder.link_levels
    append = parts.append
    for index, link in enumerate(links):
        level = levels.get(index) or encoder.link_level(index)
        append(f'{level.trace_id}{link.trace_id.hex()}{level.span_id}{link.span_id.hex()}"')
        trace_state = link.trace_state
        if trace_state:
            append(level.trace_state + lp_field_string(trace_state))
        attributes = link.attributes
        if attributes:
            _attributes(attributes, level, parts)
        dropped = link.dropped_attributes_count
        if dropped:
            append(f"{level.dropped}{dropped}")
        flags = link.flags
        if flags:
            append(f"{level.flags}{flags}")


_names: dict[str, str] = {}


def _name(name: str) -> str:
    if len(_names) >= _CACHE_LIMIT:
        _names.clear()
    fragment = _names[name] = _NAME + lp_tag_value(name) if name else ""
    return fragment


def _span_tags(trace_id: str, span_id: str, parent: bytes, trace_state: str, name: str, code: int, kind: int
               ) -> tuple[str, str]:
    """A span line's own tags (IDs in hex), and its first field, the kind."""
    if trace_id and span_id:
        tags = f"{_TRACE_ID}{trace_id}{_SPAN_ID}{span_id}"
    else:
        tags = (_TRACE_ID + trace_id if trace_id else "") + (_SPAN_ID + span_id if span_id else "")
    if parent:
        tags = f"{tags}{_PARENT}{parent.hex()}"
    if trace_state:
        tags = f"{tags}{_TRACE_STATE}{lp_tag_value(trace_state)}"
    name_tag = _names.get(name)
    if name_tag is None:
        name_tag = _name(name)
    if code:
        tags = f"{tags}{name_tag}{_STATUS.get(code) or _unknown_status(code)}"
    else:
        tags += name_tag
    return tags + (_KIND_TAG.get(kind) or _unknown_kind_tag(kind)), _KIND.get(kind) or _unknown_kind(kind)


def _message_and_flags(message: str, flags: int, parts: list[str]) -> None:
    """The status message and flags fields of a span line, when set."""
    if message:
        parts.append(_STATUS_MESSAGE + lp_field_string(message))
    if flags:
        parts.append(f"{_FLAGS}{flags}")


def _encode_spans(encoder: Encoder, head: str, tail: str, spans: Iterable[trace_pb2.Span], out: list[str]) -> None:
    """Append one line per span to `out`.

    `head` is the measurement followed by the resource and scope tags, `tail` the resource and scope
    fields; both escaped already (see `Encoder.encode`).
    """
    append = out.append
    level = encoder.span_level
    for span in spans:
        name = span.name
        trace_id = span.trace_id.hex()
        span_id = span.span_id.hex()
        parent = span.parent_span_id
        trace_state = span.trace_state
        start = span.start_time_unix_nano
        end = span.end_time_unix_nano
        status = span.status
        code = status.code
        kind = span.kind

        tags, kind_field = _span_tags(trace_id, span_id, parent, trace_state, name, code, kind)
        parts = [f"{kind_field}{_END}{end}{_DURATION}{end - start}"]
        attributes = span.attributes
        if attributes:
            _attributes(attributes, level, parts)
        events = span.events
        if events:
            _events(encoder, events, parts)
        links = span.links
        if links:
            _links(encoder, links, parts)
        _message_and_flags(status.message, span.flags, parts)
        dropped = span.dropped_attributes_count
        if dropped:
            parts.append(f"{_DROPPED_ATTRIBUTES}{dropped}")
        dropped = span.dropped_events_count
        if dropped:
            parts.append(f"{_DROPPED_EVENTS}{dropped}")
        dropped = span.dropped_links_count
        if dropped:
            parts.append(f"{_DROPPED_LINKS}{dropped}")
        append(f"{head}{tags} {''.join(parts)}{tail} {start}")


def _warnings_text(warnings: list[str]) -> str:
    found = col.attribute_text(warnings_value(warnings))
    assert found is not None
    return found[0]


_WARNINGS = -1  # no Jaeger value type: the value type of the span's warnings, as their array attribute
# Jaeger value type → (the text of its value in a column, the type the row records): model/vocabulary.py's
# OTLP_FIELD composed with span_rows.SCALAR_TEXT.
_JAEGER_TEXT = {vt: col.SCALAR_TEXT[otlp_field] for vt, otlp_field in vocabulary.OTLP_FIELD.items()}
_JAEGER_TEXT[_WARNINGS] = (_warnings_text, col.TYPE_ARRAY)
_JAEGER_UNKNOWN = col.SCALAR_TEXT[vocabulary.UNKNOWN_VALUE_FIELDS[1]]
# Strings, the common case, are read without the table: their text is the value itself.
_JAEGER_STRING = model_pb2.STRING
assert _JAEGER_TEXT[_JAEGER_STRING] == (str, "")
_NO_SCOPE = trace_pb2.ScopeSpans()  # a Jaeger span's scope: none (`jaeger_spans_to_resource_spans`)


def _jaeger_text(vt: int, value: Any) -> tuple[str, str]:
    text_of, type_ = _JAEGER_TEXT.get(vt, _JAEGER_UNKNOWN)
    return text_of(value), type_


def _jaeger_attributes(values: list[JaegerValue], level: _Level, parts: list[str]) -> None:
    """`_attributes` of Jaeger tags or log fields (`vocabulary.jaeger_values`)."""
    per_level = level.per_level
    keys = level.keys
    overflow: list[JaegerValue] = []
    types: list[str] = []
    for item in values[:per_level]:
        key, vt, text = item
        head = keys.get(key) or level.key(key)
        if head is None:
            overflow.append(item)
            continue
        if vt != _JAEGER_STRING:
            text, type_ = _jaeger_text(vt, text)
            if type_:
                types.append((_type_keys.get(key) or _type_key(key)) + type_)
        if '"' in text or "\\" in text:
            text = _escape_string(text)
        parts.append(f'{head}{text}"')
    if types:
        parts.append(f'{level.types_head}{",".join(types)}"')
    if overflow or len(values) > per_level:  # the budget's refusals, then what is beyond the level's count
        _overflow_cell([col.overflow_text_entry(key, *_jaeger_text(vt, value))
                        for key, vt, value in overflow + values[per_level:]], level, parts)


def _encode_jaeger_spans(encoder: Encoder, head: str, tail: str, spans: Iterable[JaegerSpanView],
                         out: list[str]) -> None:
    """`_encode_spans` of Jaeger spans."""
    append = out.append
    level = encoder.span_level
    event_levels = encoder.event_levels
    link_levels = encoder.link_levels
    for span in spans:
        name = span.name
        start = span.start_time_unix_nano
        end = span.end_time_unix_nano
        code = span.status_code
        kind = span.kind

        tags, kind_field = _span_tags(span.trace_id.hex(), span.span_id.hex(), span.parent_span_id,
                                      span.trace_state, name, code, kind)
        parts = [f"{kind_field}{_END}{end}{_DURATION}{end - start}"]
        values = span.attributes
        if span.warnings:
            values = [*values, (vocabulary.WARNINGS, _WARNINGS, span.warnings)]
        if values:
            _jaeger_attributes(values, level, parts)
        for index, event in enumerate(span.events):
            event_level = event_levels.get(index) or encoder.event_level(index)
            event_time = event.time_unix_nano
            parts.append(f"{event_level.time}{event_time}")
            if float(event_time) != event_time:  # as in `_events`
                parts.append(f"{event_level.exact_time}{event_time}i")
            if event.name:
                parts.append(event_level.name + lp_field_string(event.name))
            if event.fields:
                _jaeger_attributes(event.fields, event_level, parts)
        for index, link in enumerate(span.links):
            link_level = link_levels.get(index) or encoder.link_level(index)
            parts.append(f'{link_level.trace_id}{link.trace_id.hex()}{link_level.span_id}{link.span_id.hex()}"')
            _jaeger_attributes([(vocabulary.REF_TYPE, _JAEGER_STRING, link.ref_type)], link_level, parts)
        _message_and_flags(span.status_message, span.flags, parts)
        append(f"{head}{tags} {''.join(parts)}{tail} {start}")


def _unknown_status(code: int) -> str:
    return _tag(col.STATUS_CODE) + str(code)


def _unknown_kind_tag(kind: int) -> str:
    return _tag(col.KIND_TAG) + str(kind)


def _unknown_kind(kind: int) -> str:
    return lp_field_key(col.KIND) + "=" + lp_field_string(str(kind))


_DEFAULT = Encoder()


def encode_resource_spans(table: str, resource_spans: Iterable[trace_pb2.ResourceSpans],
                          encoder: Encoder | None = None) -> list[str]:
    """Line protocol for every span, one line per span (without newline), in input order, through
    `encoder` (its budget decides which attributes overflow); without one, every attribute gets a column.

    Join lines with "\\n" to post them; any split between lines is a valid request body.
    """
    return (encoder or _DEFAULT).encode(table, resource_spans)
