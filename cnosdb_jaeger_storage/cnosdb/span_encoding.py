"""OTLP spans, and Jaeger spans (`SpanWalker.walk_jaeger`), to rows of the span table in the layout of
docs/schema.md: the one definition of that mapping, written through a `RowSink` that makes the rows line protocol
(`line_protocol.Encoder`, for CnosDB's HTTP API) or columns (`span_columns.ColumnEncoder`, for the embedded
cnosdb-lite).

This walk over protobuf objects is the ingest bottleneck (measured here: about 16 µs per span for a generic
flatten), so it is fused and cached rather than going through row dicts:

- a resource's and a scope's cells are made once and shared by all their spans (and reused across requests for
  an identical resource or scope), in the sink's own form (`RowSink.end_group`);
- the sink's token of every attribute column, span name and types-JSON key is cached, as keys and names repeat
  across spans;
- string attribute values, the common case, are read without `WhichOneof`.

Cells are what `span_rows` reads back: value texts from `span_rows.attribute_text`, names in their stored form
(model/stored_names.py, through the sink). Timestamps are nanoseconds.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from ..model import span_rows as col
from ..model import vocabulary
from ..model.jaeger_otlp import JaegerSpanView, ProcessGroup, warnings_value
from ..model.stored_names import stored_name
from ..model.vocabulary import JaegerValues, each_value
from ..proto import model_pb2

__all__ = ["AttributeBudget", "RowSink", "SpanWalker"]

# Caches are cleared when they reach this size, which bounds memory under high-cardinality names.
CACHE_LIMIT = 65_536
# Resources and scopes are cached by their serialized form, which can be large: keep fewer.
_GROUP_CACHE_LIMIT = 1024

KIND_NAMES = {number: name for name, number in trace_pb2.Span.SpanKind.items()}
STATUS_NAMES = {number: name for name, number in trace_pb2.Status.StatusCode.items() if number}

_UNLIMITED = sys.maxsize

Group = TypeVar("Group")


class RowSink(Protocol[Group]):
    """Where the walk writes rows, a cell at a time, in the sink's own form.

    A column is named by a token the sink makes of it once (`*_token`, cached by the walk); the kind of token
    says the column's type. Cells written after `begin` belong to a group (a resource's or a scope's cells,
    `end_group`) or to a span's row (`end_span`), whose groups `use_groups` set. The first cell of a column in
    a row is the one stored, as CnosDB keeps the first of a line's duplicate keys. The walk writes each span's
    kind first. A sink may replace its cell methods (`tag` to `integer`) at `begin`, so that a cell costs no
    Python call: the walk looks them up after it. What they return is not used.
    """

    def tag_token(self, column: str) -> str: ...

    def string_token(self, column: str) -> str: ...

    def number_token(self, column: str) -> str: ...

    def integer_token(self, column: str) -> str: ...

    def tag(self, token: str, value: str) -> object:
        """A tag: `value` as it is, not yet in its stored form; never empty."""

    def id_tag(self, token: str, hex_id: str) -> object:
        """A tag holding an ID in hex (no character to escape or store otherwise)."""

    def string(self, token: str, text: str) -> object: ...

    def number(self, token: str, value: int) -> object:
        """A DOUBLE cell of an integer (CnosDB's layout keeps times, durations and counts as doubles)."""

    def integer(self, token: str, value: int) -> object:
        """A BIGINT cell."""

    def begin(self) -> None: ...

    def end_group(self) -> Group: ...

    def use_groups(self, resource: Group, scope: Group) -> None: ...

    def end_span(self, start: int) -> None: ...


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
    """One attribute level (span, event i, link i): its column prefix, the cached tokens of its attribute keys,
    and the tokens of its other columns.

    `keys` caches the token of every key whose column the budget admitted; a key not in it is asked of the
    budget (`key`), so a span whose keys all have columns costs no more than without a budget.
    """

    __slots__ = ("budget", "counts", "dropped", "exact_time", "flags", "keys", "label", "name", "overflow",
                 "per_level", "prefix", "sink", "span_id", "time", "trace_id", "trace_state", "types")

    def __init__(self, prefix: str, sink: RowSink[Any], budget: AttributeBudget, label: str,
                 counts: dict[str, int]) -> None:
        self.prefix = prefix
        self.sink = sink
        self.keys: dict[str, str] = {}
        self.budget = budget
        self.per_level = budget.per_level
        self.label = label
        self.counts = counts
        self.overflow = sink.string_token(prefix + col.ATTRIBUTES_OVERFLOW)
        self.types = sink.string_token(prefix + col.ATTRIBUTE_TYPES)
        self.dropped = sink.number_token(prefix + col.DROPPED_ATTRIBUTES)
        # Only an event's or a link's: under the span's prefix these names are the span's own columns.
        if label == "event":
            self.time = sink.number_token(prefix + col.EVENT_TIME)
            self.exact_time = sink.integer_token(prefix + col.EVENT_TIME_EXACT)
            self.name = sink.string_token(prefix + col.EVENT_NAME)
        elif label == "link":
            self.trace_id = sink.string_token(prefix + col.LINK_TRACE_ID)
            self.span_id = sink.string_token(prefix + col.LINK_SPAN_ID)
            self.trace_state = sink.string_token(prefix + col.LINK_TRACE_STATE)
            self.flags = sink.number_token(prefix + col.LINK_FLAGS)

    def key(self, key: str) -> str | None:
        """The token of attribute `key`'s column, or None when the budget has no column for it."""
        if not self.budget.admit(self.prefix + col.ATTRIBUTES + stored_name(key)):
            return None
        keys = self.keys
        if len(keys) >= CACHE_LIMIT:
            keys.clear()
        token = keys[key] = self.sink.string_token(self.prefix + col.ATTRIBUTES + key)
        return token


_type_keys: dict[str, str] = {}


def _type_key(key: str) -> str:
    if len(_type_keys) >= CACHE_LIMIT:
        _type_keys.clear()
    fragment = _type_keys[key] = col.type_key(key)
    return fragment


_T_OTHER = {t: t for t in (col.TYPE_BYTES, col.TYPE_ARRAY, col.TYPE_KVLIST)}
_double_text = col.double_text


def _attributes(attributes: Any, level: _Level, sink: RowSink[Any]) -> None:
    """A cell per attribute, then the types cell if needed, then the overflow cell for the attributes beyond
    the budget, if any."""
    keys = level.keys
    string = sink.string
    types = None
    overflow = tail = None
    if len(attributes) > level.per_level:
        tail = attributes[level.per_level:]
        attributes = attributes[:level.per_level]
    written = set()  # a key's first attribute wins, its type with it (a column keeps its first cell)
    for kv in attributes:
        key = kv.key
        token = keys.get(key) or level.key(key)
        if token is None:
            if overflow is None:
                overflow = [kv]
            else:
                overflow.append(kv)
            continue
        if token in written:
            continue
        written.add(token)
        value = kv.value
        text = value.string_value
        if text:
            string(token, text)
            continue
        which = value.WhichOneof("value")
        if which == "int_value":
            text = str(value.int_value)
            type_ = col.TYPE_INT
        elif which == "bool_value":
            text = "true" if value.bool_value else "false"
            type_ = col.TYPE_BOOL
        elif which == "double_value":
            text = _double_text(value.double_value)
            type_ = col.TYPE_DOUBLE
        elif which == "string_value":
            string(token, "")
            continue
        elif which is None:
            # No value: nothing to store, as in CnosDB.
            continue
        else:
            text, name = col.attribute_text(value)  # type: ignore[misc]  # `which` is set: a pair, never None
            type_ = _T_OTHER[name]
        string(token, text)
        if types is None:
            types = [(_type_keys.get(key) or _type_key(key)) + type_]
        else:
            types.append((_type_keys.get(key) or _type_key(key)) + type_)
    if types is not None:
        string(level.types, ",".join(types))
    if overflow is not None or tail is not None:
        _overflow_cell([e for e in (col.overflow_entry(kv.key, kv.value) for kv in (*(overflow or ()), *(tail or ())))
                        if e is not None], level, sink)


def _overflow_cell(entries: list[str], level: _Level, sink: RowSink[Any]) -> None:
    """The overflow cell of a level holding `entries` (`span_rows.overflow_entry`), if any."""
    if entries:
        sink.string(level.overflow, col.encode_overflow(entries))
        level.counts[level.label] = level.counts.get(level.label, 0) + len(entries)


def _events(walker: SpanWalker[Any], events: Any, sink: RowSink[Any]) -> None:
    levels = walker.event_levels
    number = sink.number
    for index, event in enumerate(events):
        level = levels.get(index) or walker.event_level(index)
        event_time = event.time_unix_nano
        number(level.time, event_time)
        if float(event_time) != event_time:  # CnosDB's DOUBLE column cannot hold it exactly
            sink.integer(level.exact_time, event_time)
        name = event.name
        if name:
            sink.string(level.name, name)
        attributes = event.attributes
        if attributes:
            _attributes(attributes, level, sink)
        dropped = event.dropped_attributes_count
        if dropped:
            number(level.dropped, dropped)


def _links(walker: SpanWalker[Any], links: Any, sink: RowSink[Any]) -> None:
    levels = walker.link_levels
    string = sink.string
    for index, link in enumerate(links):
        level = levels.get(index) or walker.link_level(index)
        string(level.trace_id, link.trace_id.hex())
        string(level.span_id, link.span_id.hex())
        trace_state = link.trace_state
        if trace_state:
            string(level.trace_state, trace_state)
        attributes = link.attributes
        if attributes:
            _attributes(attributes, level, sink)
        dropped = link.dropped_attributes_count
        if dropped:
            sink.number(level.dropped, dropped)
        flags = link.flags
        if flags:
            sink.number(level.flags, flags)


class _SpanTokens:
    """The tokens of a span row's own columns in one sink."""

    def __init__(self, sink: RowSink[Any]) -> None:
        self.trace_id = sink.tag_token(col.TRACE_ID)
        self.span_id = sink.tag_token(col.SPAN_ID)
        self.parent = sink.tag_token(col.PARENT_SPAN_ID)
        self.trace_state = sink.tag_token(col.TRACE_STATE)
        self.name = sink.tag_token(col.NAME)
        self.status = sink.tag_token(col.STATUS_CODE)
        self.kind_tag = sink.tag_token(col.KIND_TAG)
        self.kind = sink.string_token(col.KIND)
        self.end = sink.number_token(col.END_TIME)
        self.duration = sink.number_token(col.DURATION)
        self.flags = sink.number_token(col.FLAGS)
        self.status_message = sink.string_token(col.STATUS_MESSAGE)
        self.dropped_attributes = sink.number_token(col.SPAN_DROPPED_ATTRIBUTES)
        self.dropped_events = sink.number_token(col.DROPPED_EVENTS)
        self.dropped_links = sink.number_token(col.DROPPED_LINKS)


def _span_head(tokens: _SpanTokens, sink: RowSink[Any], trace_id: bytes, span_id: bytes, parent: bytes,
               trace_state: str, name: str, code: int, kind: int, start: int, end: int) -> None:
    """Begin a span's row: its tags, kind, end and duration."""
    sink.begin()
    kind_name = KIND_NAMES.get(kind) or str(kind)
    sink.string(tokens.kind, kind_name)
    id_tag = sink.id_tag
    if trace_id:  # always, once `quoting.check_spans` passed
        id_tag(tokens.trace_id, trace_id.hex())
    if span_id:
        id_tag(tokens.span_id, span_id.hex())
    if parent:
        id_tag(tokens.parent, parent.hex())
    tag = sink.tag
    if trace_state:
        tag(tokens.trace_state, trace_state)
    if name:
        tag(tokens.name, name)
    if code:
        tag(tokens.status, STATUS_NAMES.get(code) or str(code))
    tag(tokens.kind_tag, kind_name)
    number = sink.number
    number(tokens.end, end)
    number(tokens.duration, end - start)


def _message_and_flags(tokens: _SpanTokens, sink: RowSink[Any], message: str, flags: int) -> None:
    """The status message and flags cells of a span, when set."""
    if message:
        sink.string(tokens.status_message, message)
    if flags:
        sink.number(tokens.flags, flags)


def _walk_spans(walker: SpanWalker[Any], spans: Iterable[trace_pb2.Span]) -> int:
    """A row per span, in order; how many."""
    sink = walker.sink
    tokens = walker.span_tokens
    level = walker.span_level
    count = 0
    for span in spans:
        status = span.status
        start = span.start_time_unix_nano
        _span_head(tokens, sink, span.trace_id, span.span_id, span.parent_span_id, span.trace_state, span.name,
                   status.code, span.kind, start, span.end_time_unix_nano)
        attributes = span.attributes
        if attributes:
            _attributes(attributes, level, sink)
        events = span.events
        if events:
            _events(walker, events, sink)
        links = span.links
        if links:
            _links(walker, links, sink)
        _message_and_flags(tokens, sink, status.message, span.flags)
        dropped = span.dropped_attributes_count
        if dropped:
            sink.number(tokens.dropped_attributes, dropped)
        dropped = span.dropped_events_count
        if dropped:
            sink.number(tokens.dropped_events, dropped)
        dropped = span.dropped_links_count
        if dropped:
            sink.number(tokens.dropped_links, dropped)
        sink.end_span(start)
        count += 1
    return count


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


def _jaeger_attributes(values: JaegerValues, level: _Level, sink: RowSink[Any]) -> None:
    """`_attributes` of Jaeger tags or log fields (`vocabulary.jaeger_values`)."""
    within = 3 * level.per_level  # `values` holds three items a value
    keys = level.keys
    string = sink.string
    overflow: JaegerValues = []
    types: list[str] = []
    written = set()  # as in `_attributes`
    for key, vt, text in each_value(values[:within] if len(values) > within else values):
        token = keys.get(key) or level.key(key)
        if token is None:
            overflow += (key, vt, text)
            continue
        if token in written:
            continue
        written.add(token)
        if vt != _JAEGER_STRING:
            text_of, type_ = _JAEGER_TEXT.get(vt, _JAEGER_UNKNOWN)
            text = text_of(text)
            if type_:
                types.append((_type_keys.get(key) or _type_key(key)) + type_)
        string(token, text)
    if types:
        string(level.types, ",".join(types))
    if overflow or len(values) > within:  # the budget's refusals, then what is beyond the level's count
        _overflow_cell([col.overflow_text_entry(key, *_jaeger_text(vt, value))
                        for key, vt, value in each_value(overflow + values[within:])], level, sink)


def _walk_jaeger_spans(walker: SpanWalker[Any], spans: Iterable[JaegerSpanView]) -> None:
    """`_walk_spans` of Jaeger spans."""
    sink = walker.sink
    tokens = walker.span_tokens
    level = walker.span_level
    event_levels = walker.event_levels
    link_levels = walker.link_levels
    for span in spans:
        start = span.start_time_unix_nano
        _span_head(tokens, sink, span.trace_id, span.span_id, span.parent_span_id, span.trace_state, span.name,
                   span.status_code, span.kind, start, span.end_time_unix_nano)
        values = span.attributes
        if span.warnings:
            values = [*values, vocabulary.WARNINGS, _WARNINGS, span.warnings]
        if values:
            _jaeger_attributes(values, level, sink)
        for index, event in enumerate(span.events):
            event_level = event_levels.get(index) or walker.event_level(index)
            event_time = event.time_unix_nano
            sink.number(event_level.time, event_time)
            if float(event_time) != event_time:  # as in `_events`
                sink.integer(event_level.exact_time, event_time)
            if event.name:
                sink.string(event_level.name, event.name)
            if event.fields:
                _jaeger_attributes(event.fields, event_level, sink)
        for index, link in enumerate(span.links):
            link_level = link_levels.get(index) or walker.link_level(index)
            sink.string(link_level.trace_id, link.trace_id.hex())
            sink.string(link_level.span_id, link.span_id.hex())
            _jaeger_attributes([vocabulary.REF_TYPE, _JAEGER_STRING, link.ref_type], link_level, sink)
        _message_and_flags(tokens, sink, span.status_message, span.flags)
        sink.end_span(start)


class SpanWalker(Generic[Group]):
    """Spans to rows of one table through `sink`, under an attribute budget, with the caches that make it fast.

    One per table (its `AttributeBudget` knows that table's columns). `overflowed` counts, by level, the
    attributes that went to an overflow column since `take_overflowed` was last called.
    """

    def __init__(self, sink: RowSink[Group], budget: AttributeBudget | None = None) -> None:
        self.sink = sink
        self.budget = budget if budget is not None else AttributeBudget()
        self.overflowed: dict[str, int] = {}
        self.span_tokens = _SpanTokens(sink)
        self.span_level = _Level(col.SPAN, sink, self.budget, "span", self.overflowed)
        self.event_levels: dict[int, _Level] = {}
        self.link_levels: dict[int, _Level] = {}
        self.resources: dict[tuple[str, bytes], tuple[Group, int]] = {}
        self.scopes: dict[tuple[str, bytes], tuple[Group, int]] = {}

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

    def walk(self, resource_spans: Iterable[trace_pb2.ResourceSpans]) -> None:
        """A row for every span, in input order."""
        counts = self.overflowed
        sink = self.sink
        for rs in resource_spans:
            resource, resource_overflow = self._resource_of(rs.resource, rs.schema_url)
            for ss in rs.scope_spans:
                scope, scope_overflow = self._scope(ss)
                sink.use_groups(resource, scope)
                spans = _walk_spans(self, ss.spans)
                if resource_overflow and spans:
                    counts["resource"] = counts.get("resource", 0) + resource_overflow * spans
                if scope_overflow and spans:
                    counts["scope"] = counts.get("scope", 0) + scope_overflow * spans

    def walk_jaeger(self, groups: Iterable[ProcessGroup]) -> None:
        """`walk` of Jaeger spans without OTLP messages: their views grouped by process, with its resource
        (`jaeger_otlp.group_by_process`).

        The rows are those `walk` gives for `jaeger_otlp.jaeger_spans_to_resource_spans` of the same spans
        (tests/test_jaeger_lines.py): both read the one translation, `JaegerSpanView`.
        """
        scope, scope_overflow = self._scope(_NO_SCOPE)
        counts = self.overflowed
        sink = self.sink
        for resource, spans in groups:
            cells, resource_overflow = self._resource_of(resource, "")
            sink.use_groups(cells, scope)
            _walk_jaeger_spans(self, spans)
            if resource_overflow and spans:
                counts["resource"] = counts.get("resource", 0) + resource_overflow * len(spans)
            if scope_overflow and spans:
                counts["scope"] = counts.get("scope", 0) + scope_overflow * len(spans)

    def event_level(self, index: int) -> _Level:
        level = self.event_levels[index] = _Level(col.event_prefix(index), self.sink, self.budget, "event",
                                                  self.overflowed)
        return level

    def link_level(self, index: int) -> _Level:
        level = self.link_levels[index] = _Level(col.link_prefix(index), self.sink, self.budget, "link",
                                                 self.overflowed)
        return level

    def _other_attributes(self, attributes: Any, prefix: str, skip: str | None = None) -> int:
        """Cells of resource or scope attributes (not on the hot path): the first `skip` attribute's text as
        the service tag (none when absent or empty); how many attributes overflowed."""
        sink = self.sink
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
                sink.string(sink.string_token(prefix + col.ATTRIBUTES + kv.key), text)
            if type_:
                types.setdefault(kv.key, type_)
        if types:
            sink.string(sink.string_token(prefix + col.ATTRIBUTE_TYPES), col.encode_types(types.items()))
        if overflow:
            sink.string(sink.string_token(prefix + col.ATTRIBUTES_OVERFLOW), col.encode_overflow(overflow))
        if tag:
            sink.tag(sink.tag_token(col.SERVICE_NAME), tag)
        return len(overflow)

    def _resource_of(self, resource: Resource, schema_url: str) -> tuple[Group, int]:
        """(cells, overflowed) of a resource: the service tag, and the other attributes, count and schema URL."""
        key = (schema_url, resource.SerializeToString(deterministic=True))
        resources = self.resources
        found = resources.get(key)
        if found is None:
            sink = self.sink
            sink.begin()
            overflowed = self._other_attributes(resource.attributes, col.RESOURCE, "service.name")
            if resource.dropped_attributes_count:
                sink.number(sink.number_token(col.RESOURCE_DROPPED_ATTRIBUTES), resource.dropped_attributes_count)
            if schema_url:
                sink.string(sink.string_token(col.RESOURCE_SCHEMA_URL), schema_url)
            if len(resources) >= _GROUP_CACHE_LIMIT:
                resources.clear()
            found = resources[key] = (sink.end_group(), overflowed)
        return found

    def _scope(self, scope_spans: trace_pb2.ScopeSpans) -> tuple[Group, int]:
        """(cells, overflowed) of an instrumentation scope and its ScopeSpans schema URL."""
        scope = scope_spans.scope
        key = (scope_spans.schema_url, scope.SerializeToString(deterministic=True))
        scopes = self.scopes
        found = scopes.get(key)
        if found is None:
            sink = self.sink
            sink.begin()
            if scope.name:
                sink.tag(sink.tag_token(col.SCOPE_NAME), scope.name)
            if scope.version:
                sink.tag(sink.tag_token(col.SCOPE_VERSION), scope.version)
            overflowed = self._other_attributes(scope.attributes, col.SCOPE)
            if scope.dropped_attributes_count:
                sink.number(sink.number_token(col.SCOPE_DROPPED_ATTRIBUTES), scope.dropped_attributes_count)
            if scope_spans.schema_url:
                sink.string(sink.string_token(col.SCOPE_SCHEMA_URL), scope_spans.schema_url)
            if len(scopes) >= _GROUP_CACHE_LIMIT:
                scopes.clear()
            found = scopes[key] = (sink.end_group(), overflowed)
        return found
