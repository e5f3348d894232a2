"""CnosDB's native trace ingest (`POST /api/v1/traces`): OTLP spans flattened to one row per span.

Reproduces `parse_protobuf_to_otlptrace` + `parse_to_line` of CnosDB 2.4.3 (see docs: facts 4.1),
including its write defect: CnosDB fills one column map per ResourceSpans (cleared only when the next
ResourceSpans starts) and pushes a copy of it for every span.  A span therefore carries every column an
earlier span -- or an earlier ScopeSpans' scope -- of the same ResourceSpans set and it does not set
itself: span attributes, `Event_<i>/*`, `Link_<i>/*`, `Status/*`, scope name/version/attributes.  Columns
every span sets (ids, name, kind, times, flags, dropped counts, `trace_state`, `parent_span_id` -- `""`
for a root) are always its own.  This is always on: it is CnosDB's own endpoint, and a client pointed at
lite should store what CnosDB stores.

Rows are then written as line protocol text, escaped for CnosDB's line-protocol parser.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from .errors import CnosDBError
from .result_format import rust_f64_debug, rust_f64_display

__all__ = ["TAG_COLUMNS", "TIME_COLUMN", "SpanRow", "flatten_request", "rows_to_line_protocol"]

RESOURCE = "ResourceSpans/Resource/"
SCOPE = "ResourceSpans/ScopeSpans/InstrumentationScope/"
SPAN = "ResourceSpans/ScopeSpans/Span/"
SERVICE_NAME = RESOURCE + "attributes/service.name"
TIME_COLUMN = SPAN + "start_time_unix_nano"

# The tag list of http_service.rs `write_otlp_trace`; every other column is a field.
TAG_COLUMNS = frozenset(
    {
        SERVICE_NAME,
        SCOPE + "name",
        SCOPE + "version",
        SPAN + "trace_id",
        SPAN + "span_id",
        SPAN + "parent_span_id",
        SPAN + "trace_state",
        SPAN + "name",
        SPAN + "Status/code",
    }
)

_I64_MAX = 2**63 - 1
_U64 = 2**64


@dataclass
class SpanRow:
    """One span as CnosDB stores it: tag columns, field columns (str or number ⇒ DOUBLE) and time."""

    time: int
    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str | int] = field(default_factory=dict)


def parse_log_error(message: str) -> CnosDBError:
    # ParseLog (040016) is a 422 (main/src/http/mod.rs).
    return CnosDBError(422, "040016", f"Error parsing log message: {message}")


# ---------------------------------------------------------------------------------------------------
# Attribute values: String as is, Bool/Int/Double via Rust `to_string`, anything else Rust Debug text
# of the prost `AnyValue`, lower-cased.


def _debug_str(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif not ch.isprintable() and unicodedata.category(ch) != "Zs":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _debug_any_value(value: common_pb2.AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind is None:
        inner = "None"
    elif kind == "string_value":
        inner = f"Some(StringValue({_debug_str(value.string_value)}))"
    elif kind == "bool_value":
        inner = f"Some(BoolValue({'true' if value.bool_value else 'false'}))"
    elif kind == "int_value":
        inner = f"Some(IntValue({value.int_value}))"
    elif kind == "double_value":
        inner = f"Some(DoubleValue({rust_f64_debug(value.double_value)}))"
    elif kind == "array_value":
        items = ", ".join(_debug_any_value(v) for v in value.array_value.values)
        inner = f"Some(ArrayValue(ArrayValue {{ values: [{items}] }}))"
    elif kind == "kvlist_value":
        items = ", ".join(_debug_key_value(kv) for kv in value.kvlist_value.values)
        inner = f"Some(KvlistValue(KeyValueList {{ values: [{items}] }}))"
    else:  # bytes_value: a prost Vec<u8> prints as a list of numbers
        inner = f"Some(BytesValue([{', '.join(str(b) for b in value.bytes_value)}]))"
    return f"AnyValue {{ value: {inner} }}"


def _debug_key_value(kv: common_pb2.KeyValue) -> str:
    value = _debug_any_value(kv.value) if kv.HasField("value") else None
    shown = f"Some({value})" if value is not None else "None"
    return f"KeyValue {{ key: {_debug_str(kv.key)}, value: {shown} }}"


def attribute_text(value: common_pb2.AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return rust_f64_display(value.double_value)
    return _debug_any_value(value).lower()


def _put_attributes(columns: dict[str, str | int], prefix: str, attributes: Iterable[common_pb2.KeyValue]) -> None:
    for kv in attributes:
        if kv.HasField("value"):  # a KeyValue without value is skipped; an empty AnyValue gives ""
            columns[prefix + "attributes/" + kv.key] = attribute_text(kv.value)


def _hex(data: bytes) -> str:
    return data.hex()


# ---------------------------------------------------------------------------------------------------
# Flattening.


def _resource_columns(resource_spans: trace_pb2.ResourceSpans) -> dict[str, str | int]:
    columns: dict[str, str | int] = {}
    if resource_spans.HasField("resource"):
        resource = resource_spans.resource
        for kv in resource.attributes:
            if kv.key == "service.name":
                # Only a string service.name is kept -- and then as a tag.
                if kv.HasField("value") and kv.value.WhichOneof("value") == "string_value":
                    columns[SERVICE_NAME] = kv.value.string_value
            elif kv.HasField("value"):
                columns[RESOURCE + "attributes/" + kv.key] = attribute_text(kv.value)
        columns[RESOURCE + "dropped_attributes_count"] = resource.dropped_attributes_count
    columns["ResourceSpans/schema_url"] = resource_spans.schema_url
    return columns


def _scope_columns(scope_spans: trace_pb2.ScopeSpans) -> dict[str, str | int]:
    columns: dict[str, str | int] = {}
    if scope_spans.HasField("scope"):
        scope = scope_spans.scope
        columns[SCOPE + "name"] = scope.name
        columns[SCOPE + "version"] = scope.version
        _put_attributes(columns, SCOPE, scope.attributes)
        columns[SCOPE + "dropped_attributes_count"] = scope.dropped_attributes_count
    columns["ResourceSpans/ScopeSpans/schema_url"] = scope_spans.schema_url
    return columns


def _span_columns(span: trace_pb2.Span) -> dict[str, str | int]:
    columns: dict[str, str | int] = {
        SPAN + "trace_id": _hex(span.trace_id),
        SPAN + "span_id": _hex(span.span_id),
        SPAN + "trace_state": span.trace_state,
        SPAN + "parent_span_id": _hex(span.parent_span_id),
        SPAN + "flags": span.flags,
        SPAN + "name": span.name,
        # Unknown enum numbers read as the default variant (prost's `kind()` / `code()`).
        SPAN + "kind": _enum_name(trace_pb2.Span.SpanKind, span.kind, "SPAN_KIND_UNSPECIFIED"),
        TIME_COLUMN: span.start_time_unix_nano,
        SPAN + "end_time_unix_nano": span.end_time_unix_nano,
    }
    _put_attributes(columns, SPAN, span.attributes)
    columns[SPAN + "dropped_attributes_count"] = span.dropped_attributes_count
    for i, event in enumerate(span.events):
        prefix = f"{SPAN}Event_{i}/"
        columns[prefix + "time_unix_nano"] = event.time_unix_nano
        columns[prefix + "name"] = event.name
        _put_attributes(columns, prefix, event.attributes)
        columns[prefix + "dropped_attributes_count"] = event.dropped_attributes_count
    columns[SPAN + "dropped_events_count"] = span.dropped_events_count
    for i, link in enumerate(span.links):
        prefix = f"{SPAN}Link_{i}/"
        columns[prefix + "trace_id"] = _hex(link.trace_id)
        columns[prefix + "span_id"] = _hex(link.span_id)
        columns[prefix + "trace_state"] = link.trace_state
        _put_attributes(columns, prefix, link.attributes)
        columns[prefix + "dropped_attributes_count"] = link.dropped_attributes_count
        columns[prefix + "flags"] = link.flags
    columns[SPAN + "dropped_links_count"] = span.dropped_links_count
    if span.HasField("status"):
        columns[SPAN + "Status/code"] = _enum_name(
            trace_pb2.Status.StatusCode, span.status.code, "STATUS_CODE_UNSET"
        )
        columns[SPAN + "Status/message"] = span.status.message
    # u64 subtraction without overflow checks (CnosDB's release profile): wraps when end < start.
    columns[SPAN + "duration_nano"] = (span.end_time_unix_nano - span.start_time_unix_nano) % _U64
    return columns


class _EnumType(Protocol):
    """A protobuf enum type (its EnumTypeWrapper), as far as `_enum_name` uses it."""

    def Name(self, number: int) -> str: ...


def _enum_name(enum_type: _EnumType, number: int, default: str) -> str:
    try:
        return enum_type.Name(number)
    except ValueError:
        return default


def _tag_text(value: str) -> str:
    # parse_to_line stores `serde_json::Value::to_string().trim_matches('"')` for tags.
    return json.dumps(value, ensure_ascii=False).strip('"')


def _to_row(columns: dict[str, str | int]) -> SpanRow:
    start = columns.pop(TIME_COLUMN)
    if not isinstance(start, int) or start > _I64_MAX:
        raise parse_log_error("Out of the time frame that can be saved")
    row = SpanRow(time=start)
    for key, value in columns.items():
        if key in TAG_COLUMNS:
            row.tags[key] = _tag_text(str(value))
        else:
            row.fields[key] = value
    return row


def flatten_request(body: bytes) -> list[SpanRow]:
    """Decode an `ExportTraceServiceRequest` and flatten it; a malformed body is a 422 (040016)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise parse_log_error(f"invalid log syntax: parse_protobuf_to_otlptrace error: {exc}") from exc
    rows = []
    for resource_spans in request.resource_spans:
        # One map per ResourceSpans, never cleared in between: CnosDB's leak (module docstring).
        columns = _resource_columns(resource_spans)
        for scope_spans in resource_spans.scope_spans:
            columns.update(_scope_columns(scope_spans))
            for span in scope_spans.spans:
                columns.update(_span_columns(span))
                rows.append(_to_row(dict(columns)))
    return rows


# ---------------------------------------------------------------------------------------------------
# Line protocol, as CnosDB v2.4.3 parses it. CnosDB's parser drops a backslash only before `,`, space and `=`;
# after a backslash it accepts only `, space = \ " '` in names and tag values, and only `\ " '` inside
# string fields, where it unescapes `\\` and `\"`.

def _escape_name(text: str, specials: str = ", =") -> str:
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt in ("\\", '"', "'"):
                # `\\`, `\"`, `\'` pass the parser and are stored verbatim.
                out.append(ch + nxt)
                i += 2
                continue
            # Any other backslash cannot be expressed; doubled, it is stored as two backslashes
            # instead of failing the whole request.
            out.append("\\\\")
        elif ch in specials:
            out.append("\\" + ch)
        elif ch in "\r\n":
            out.append(" ")  # a raw newline would end the line
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _escape_string_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field_text(value: str | int) -> str:
    if isinstance(value, str):
        return _escape_string_field(value)
    # Every number is a DOUBLE: an integer without suffix parses as F64, rounded like `as_f64`.
    return str(value)


def rows_to_line_protocol(table: str, rows: list[SpanRow]) -> str:
    measurement = _escape_name(table, ", ")
    lines = []
    for row in rows:
        tags = "".join(
            f",{_escape_name(k)}={_escape_name(v)}" for k, v in sorted(row.tags.items())
        )
        fields = ",".join(f"{_escape_name(k)}={_field_text(v)}" for k, v in sorted(row.fields.items()))
        lines.append(f"{measurement}{tags} {fields} {row.time}")
    return "\n".join(lines) + ("\n" if lines else "")
