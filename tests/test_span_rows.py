"""model/span_rows.py: attribute value texts, and rows (as CnosDB's SQL returns them) back to OTLP."""

from __future__ import annotations

import math

import pytest
from google.protobuf import json_format
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from cnosdb_jaeger_storage.model import span_rows as col
from cnosdb_jaeger_storage.model.span_rows import (
    attribute_text,
    attribute_value,
    double_text,
    rows_to_resource_spans,
)

S = col.SPAN
T0 = 1_700_000_000_123_456_789
TRACE_HEX = "000102030405060708090a0b0c0d0e0f"


@pytest.mark.parametrize(("x", "text"), [
    (72.0, "72"),
    (-3.0, "-3"),
    (0.0, "0"),
    (-0.0, "-0"),
    (72.5, "72.5"),
    (0.1, "0.1"),
    (999_999_999_999_999.0, "999999999999999"),
    (1e15, "1000000000000000.0"),
    (1e20, "1e+20"),
    (-1e20, "-1e+20"),
    (5e-324, "5e-324"),
    (math.nan, "NaN"),
    (math.inf, "inf"),
    (-math.inf, "-inf"),
], ids=["integral", "negative-integral", "zero", "negative-zero", "fraction", "tenth", "below-1e15", "1e15",
        "big", "negative-big", "subnormal", "nan", "inf", "-inf"])
def test_double_text(x, text):
    assert double_text(x) == text
    back = float(text)
    assert (math.isnan(back) and math.isnan(x)) or (back == x and math.copysign(1, back) == math.copysign(1, x))


VALUES = {
    "string": (common_pb2.AnyValue(string_value="a\"b\\c\n"), "a\"b\\c\n", ""),
    "empty-string": (common_pb2.AnyValue(string_value=""), "", ""),
    "int": (common_pb2.AnyValue(int_value=-42), "-42", "int"),
    "bool-true": (common_pb2.AnyValue(bool_value=True), "true", "bool"),
    "bool-false": (common_pb2.AnyValue(bool_value=False), "false", "bool"),
    "double": (common_pb2.AnyValue(double_value=200.0), "200", "double"),
    "bytes": (common_pb2.AnyValue(bytes_value=b"\x00\xffhi"), "AP9oaQ==", "bytes"),
    "array": (common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[
        common_pb2.AnyValue(string_value="x"), common_pb2.AnyValue(int_value=5)])),
        '{"arrayValue":{"values":[{"stringValue":"x"},{"intValue":"5"}]}}', "array"),
    "kvlist": (common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[
        common_pb2.KeyValue(key="k", value=common_pb2.AnyValue(bool_value=True))])),
        '{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":true}}]}}', "kvlist"),
    "unicode-array": (common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[
        common_pb2.AnyValue(string_value="ü🚀")])), '{"arrayValue":{"values":[{"stringValue":"ü🚀"}]}}', "array"),
}


@pytest.mark.parametrize(("value", "text", "type_"), VALUES.values(), ids=VALUES.keys())
def test_attribute_text_and_back(value, text, type_):
    assert attribute_text(value) == (text, type_)
    assert attribute_value(text, type_) == value


def test_attribute_text_of_unset_value():
    assert attribute_text(common_pb2.AnyValue()) is None


@pytest.mark.parametrize(("text", "type_"), [
    ("abc", "int"), ("yes", "bool"), ("x", "double"), ("not base64!", "bytes"), ("{", "array"),
    ('{"nope":1}', "kvlist"), ("7", "unknown-type"), ("true", "array"), ("[1]", "kvlist"), ("null", "array"),
], ids=["int", "bool", "double", "bytes", "array", "kvlist", "unknown-type", "json-true", "json-list", "json-null"])
def test_attribute_value_that_does_not_parse_is_a_string(text, type_):
    assert attribute_value(text, type_) == common_pb2.AnyValue(string_value=text)


def test_column_names():
    assert col.SERVICE_NAME == "ResourceSpans/Resource/attributes/service.name"
    assert col.NAME == "ResourceSpans/ScopeSpans/Span/name"
    assert col.SCOPE_NAME == "ResourceSpans/ScopeSpans/InstrumentationScope/name"
    assert col.STATUS_CODE == "ResourceSpans/ScopeSpans/Span/Status/code"
    assert col.event_prefix(3) + col.EVENT_TIME == "ResourceSpans/ScopeSpans/Span/Event_3/time_unix_nano"
    assert col.attribute_column(col.SPAN_ATTRIBUTES, "a\nb") == "ResourceSpans/ScopeSpans/Span/attributes/a\\'b"
    assert col.KIND not in col.TAG_COLUMNS and col.TRACE_ID in col.TAG_COLUMNS


# --- rows ------------------------------------------------------------------------------------------

# A span as CnosDB's own /api/v1/traces stores it (parse_protobuf_to_otlptrace): every attribute a string,
# Rust-formatted numbers, counts and times as DOUBLE, an empty parent, unset status spelled out.
CNOSDB_NATIVE_ROW = {
    "time": T0,
    "ResourceSpans/Resource/attributes/service.name": "cart",
    "ResourceSpans/ScopeSpans/InstrumentationScope/name": "io.opentelemetry.jdbc",
    "ResourceSpans/ScopeSpans/InstrumentationScope/version": "1.2",
    f"{S}trace_id": TRACE_HEX,
    f"{S}span_id": "0102030405060708",
    f"{S}parent_span_id": "",
    f"{S}trace_state": "",
    f"{S}name": "SELECT orders",
    f"{S}Status/code": "STATUS_CODE_UNSET",
    f"{S}kind": "SPAN_KIND_CLIENT",
    f"{S}end_time_unix_nano": float(T0 + 2_000_000),
    f"{S}duration_nano": 2_000_000.0,
    f"{S}flags": 0.0,
    f"{S}dropped_attributes_count": 0.0,
    f"{S}dropped_events_count": 0.0,
    f"{S}dropped_links_count": 0.0,
    f"{S}Status/message": "",
    f"{S}attributes/db.system": "postgresql",
    f"{S}attributes/db.rows": "12",
    f"{S}attributes/retry": "true",
    f"{S}Event_0/time_unix_nano": float(T0 + 1000),
    f"{S}Event_0/name": "exception",
    f"{S}Event_0/attributes/exception.message": "timeout",
    f"{S}Event_0/dropped_attributes_count": 0.0,
    f"{S}Link_0/trace_id": "0f0e0d0c0b0a09080706050403020100",
    f"{S}Link_0/span_id": "1112131415161718",
    f"{S}Link_0/trace_state": "",
    f"{S}Link_0/dropped_attributes_count": 0.0,
    f"{S}Link_0/flags": 0.0,
    "ResourceSpans/Resource/attributes/host.name": "node-1",
    "ResourceSpans/Resource/dropped_attributes_count": 0.0,
    "ResourceSpans/schema_url": "",
    "ResourceSpans/ScopeSpans/InstrumentationScope/dropped_attributes_count": 0.0,
    "ResourceSpans/ScopeSpans/schema_url": "",
}


def test_row_written_by_cnosdb_reads_as_strings():
    (rs,) = rows_to_resource_spans([CNOSDB_NATIVE_ROW])
    expected = {
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "cart"}},
            {"key": "host.name", "value": {"stringValue": "node-1"}}]},
        "scopeSpans": [{
            "scope": {"name": "io.opentelemetry.jdbc", "version": "1.2"},
            "spans": [{
                "traceId": "AAECAwQFBgcICQoLDA0ODw==",
                "spanId": "AQIDBAUGBwg=",
                "name": "SELECT orders",
                "kind": "SPAN_KIND_CLIENT",
                "startTimeUnixNano": str(T0),
                "endTimeUnixNano": str(T0 + 2_000_000),
                "attributes": [
                    {"key": "db.system", "value": {"stringValue": "postgresql"}},
                    {"key": "db.rows", "value": {"stringValue": "12"}},
                    {"key": "retry", "value": {"stringValue": "true"}}],
                "events": [{"timeUnixNano": str(int(float(T0 + 1000))), "name": "exception",
                            "attributes": [{"key": "exception.message", "value": {"stringValue": "timeout"}}]}],
                "links": [{"traceId": "Dw4NDAsKCQgHBgUEAwIBAA==", "spanId": "ERITFBUWFxg="}],
            }],
        }],
    }
    assert json_format.MessageToDict(rs) == expected
    span = rs.scope_spans[0].spans[0]
    assert not span.HasField("status")


def test_row_values_that_are_not_strings_are_read_as_text():
    row = {"time": 0, f"{S}attributes/n": 3.0, f"{S}attributes/b": True, f"{S}attributes/i": 7,
           f"{S}kind": "SPAN_KIND_SERVER"}
    (rs,) = rows_to_resource_spans([row])
    attributes = rs.scope_spans[0].spans[0].attributes
    assert [(a.key, a.value.string_value) for a in attributes] == [("n", "3"), ("b", "true"), ("i", "7")]


def _row(service: str, span_id: str, **extra: object) -> dict:
    return {"time": T0, col.SERVICE_NAME: service, col.TRACE_ID: TRACE_HEX, col.SPAN_ID: span_id,
            col.KIND: "SPAN_KIND_INTERNAL", col.DURATION: 10.0, **extra}


def test_rows_group_by_resource_then_scope_keeping_row_order():
    rows = [
        _row("a", "01" * 8, **{col.SCOPE_NAME: "x"}),
        _row("b", "02" * 8),
        _row("a", "03" * 8, **{col.SCOPE_NAME: "y"}),
        _row("a", "04" * 8, **{col.SCOPE_NAME: "x"}),
        _row("a", "05" * 8, **{col.SCOPE_NAME: "x", "ResourceSpans/Resource/attributes/host": "h"}),
    ]
    out = rows_to_resource_spans(rows)
    layout = [(rs.resource.attributes[0].value.string_value, len(rs.resource.attributes),
               [(ss.scope.name, [s.span_id.hex()[:2] for s in ss.spans]) for ss in rs.scope_spans])
              for rs in out]
    assert layout == [
        ("a", 1, [("x", ["01", "04"]), ("y", ["03"])]),
        ("b", 1, [("", ["02"])]),
        ("a", 2, [("x", ["05"])]),
    ]


def test_events_and_links_follow_their_index_not_column_order():
    row = _row("a", "01" * 8)
    for i in (10, 2, 0, 1):
        row[f"{S}Event_{i}/time_unix_nano"] = float(i)
        row[f"{S}Link_{i}/trace_id"] = f"{i:032x}"
        row[f"{S}Link_{i}/span_id"] = f"{i:016x}"
    (rs,) = rows_to_resource_spans([row])
    span = rs.scope_spans[0].spans[0]
    assert [e.time_unix_nano for e in span.events] == [0, 1, 2, 10]
    assert [link.span_id.hex() for link in span.links] == [f"{i:016x}" for i in (0, 1, 2, 10)]


def test_a_link_of_a_span_to_itself_is_dropped_as_cnosdbs_writer_leaked_it():
    """CnosDB's /api/v1/traces writer copies the links of earlier spans of an export onto later ones."""
    row = _row("a", "01" * 8)
    row[f"{S}Link_0/trace_id"] = row[col.TRACE_ID]
    row[f"{S}Link_0/span_id"] = "01" * 8
    row[f"{S}Link_1/trace_id"] = row[col.TRACE_ID]
    row[f"{S}Link_1/span_id"] = "02" * 8
    (rs,) = rows_to_resource_spans([row])
    assert [link.span_id.hex() for link in rs.scope_spans[0].spans[0].links] == ["02" * 8]


@pytest.mark.parametrize(("cells", "end"), [
    ({col.DURATION: 1500.0, col.END_TIME: float(T0)}, T0 + 1500),
    ({col.DURATION: 1500, col.END_TIME: float(T0)}, T0 + 1500),
    ({col.END_TIME: float(T0 + 4096)}, int(float(T0 + 4096))),
    ({col.DURATION: -float(T0), col.END_TIME: 0.0}, 0),
    ({col.DURATION: 2.0**64, col.END_TIME: float(T0 - 512)}, int(float(T0 - 512))),
    ({}, T0),
], ids=["duration", "integer-duration", "end-only", "end-unset", "cnosdb-wrapped-duration", "neither"])
def test_end_time(cells, end):
    row = {"time": T0, col.KIND: "SPAN_KIND_SERVER", **cells}
    (rs,) = rows_to_resource_spans([row])
    assert rs.scope_spans[0].spans[0].end_time_unix_nano == end


def test_typed_attributes_and_stored_names():
    row = {
        "time": T0,
        col.SERVICE_NAME: "svc\\\\one\\'",  # stored form of "svc\\one\n"
        col.NAME: "GET\\\"",  # stored form of "GET\r"
        f"{S}attributes/code": "200",
        f"{S}attributes/ok": "false",
        f"{S}attributes/raw": "AAE=",
        f"{S}attributes/line\\'key": "v",  # key "line\nkey"
        f"{S}attribute_types": "code=int,ok=bool,raw=bytes,missing=int",
        f"{S}Event_0/time_unix_nano": 1.0,
        f"{S}Event_0/attributes/x": "1.5",
        f"{S}Event_0/attribute_types": "x=double",
        "ResourceSpans/Resource/attributes/port": "8080",
        "ResourceSpans/Resource/attribute_types": "port=int",
    }
    (rs,) = rows_to_resource_spans([row])
    assert [(a.key, a.value) for a in rs.resource.attributes] == [
        ("service.name", common_pb2.AnyValue(string_value="svc\\one\n")),
        ("port", common_pb2.AnyValue(int_value=8080))]
    span = rs.scope_spans[0].spans[0]
    assert span.name == "GET\r"
    assert [(a.key, a.value) for a in span.attributes] == [
        ("code", common_pb2.AnyValue(int_value=200)),
        ("ok", common_pb2.AnyValue(bool_value=False)),
        ("raw", common_pb2.AnyValue(bytes_value=b"\x00\x01")),
        ("line\nkey", common_pb2.AnyValue(string_value="v"))]
    assert span.events[0].attributes[0].value == common_pb2.AnyValue(double_value=1.5)


@pytest.mark.parametrize("types", ["not types", "code", "other=int", 5, "code=nonsense"],
                         ids=["no-entries", "no-type", "other-key", "not-text", "unknown-type"])
def test_unreadable_types_column_reads_strings(types):
    row = {"time": T0, f"{S}attributes/code": "200", f"{S}attribute_types": types}
    (rs,) = rows_to_resource_spans([row])
    assert rs.scope_spans[0].spans[0].attributes[0].value == common_pb2.AnyValue(string_value="200")


@pytest.mark.parametrize(("text", "kind"), [
    ("SPAN_KIND_CONSUMER", trace_pb2.Span.SPAN_KIND_CONSUMER),
    ("SPAN_KIND_UNSPECIFIED", trace_pb2.Span.SPAN_KIND_UNSPECIFIED),
    ("9", 9),
    ("server", 0),
], ids=["consumer", "unspecified", "number", "unknown"])
def test_kind(text, kind):
    (rs,) = rows_to_resource_spans([{"time": T0, col.KIND: text}])
    assert rs.scope_spans[0].spans[0].kind == kind


def test_nulls_and_unknown_columns_are_ignored():
    row = {"time": T0, col.NAME: None, "some_other_column": "x", f"{S}Event_x/name": "bad index",
           f"{S}Event_0/": "no sub-column", col.KIND: "SPAN_KIND_SERVER"}
    (rs,) = rows_to_resource_spans([row])
    span = rs.scope_spans[0].spans[0]
    assert span.name == "" and len(span.events) == 0


def test_no_rows():
    assert rows_to_resource_spans([]) == []


@pytest.mark.parametrize("key", ["a=b", "a,b", "100%", 'q"uote', "back\\slash", "new\nline", "ü", ""],
                         ids=["equals", "comma", "percent", "quote", "backslash", "newline", "unicode", "empty"])
def test_attribute_types_cell_carries_any_key_without_quotes_or_backslashes(key):
    cell = col.encode_types([(key, "int"), ("other", "bool")])
    assert '"' not in cell and "\\" not in cell
    row = {"time": T0, col.attribute_column(col.SPAN_ATTRIBUTES, key): "7", f"{S}attribute_types": cell}
    (rs,) = rows_to_resource_spans([row])
    assert rs.scope_spans[0].spans[0].attributes[0].value == common_pb2.AnyValue(int_value=7)


_OVERFLOW_KEYS = ["k", "", "a_b", "100%", 'q"', "b\\", ",", ":[", "],", "x:", "\n", "k2"]
_OVERFLOW_TEXTS = ["v", "", ",", ":[", "],", '"', "\\", "%22", "v,int", "int"]


def test_an_overflow_fragment_occurs_in_a_cell_exactly_when_the_cell_holds_that_key_and_text() -> None:
    entries = []
    for i, key in enumerate(_OVERFLOW_KEYS):
        text = _OVERFLOW_TEXTS[i % len(_OVERFLOW_TEXTS)]
        value = common_pb2.AnyValue(int_value=7) if text == "int" else common_pb2.AnyValue(string_value=text)
        entries.append((key, value))
    cell = col.encode_overflow([col.overflow_entry(k, v) for k, v in entries])  # type: ignore[misc]
    assert "\\" not in cell
    assert col.decode_overflow(cell) == entries
    held = {(k, col.attribute_text(v)[0]) for k, v in entries}  # type: ignore[index]
    for key in _OVERFLOW_KEYS:
        for text in [*_OVERFLOW_TEXTS, "7"]:
            assert (col.overflow_fragment(key, text) in cell) == ((key, text) in held), (key, text)


@pytest.mark.parametrize("cell", [None, 3, "", "not json", "[]", '{"k":"v"}', '{"k":[]}', '{"k":[1]}',
                                  '{"k":["a","b","c"]}'])
def test_an_unreadable_overflow_cell_reads_as_no_attributes(cell: object) -> None:
    assert col.decode_overflow(cell) == []


def test_overflow_columns_read_back_at_every_level() -> None:
    entry = col.encode_overflow([col.overflow_entry("late", common_pb2.AnyValue(int_value=5))])  # type: ignore[list-item]
    row = {col.TIME: 1, col.TRACE_ID: "00" * 16, col.SPAN_ID: "11" * 8, col.KIND: "SPAN_KIND_SERVER",
           col.SPAN_ATTRIBUTES_OVERFLOW: entry, col.RESOURCE_ATTRIBUTES_OVERFLOW: entry,
           col.SCOPE_ATTRIBUTES_OVERFLOW: entry, col.event_prefix(0) + col.EVENT_TIME: 2.0,
           col.event_prefix(0) + col.ATTRIBUTES_OVERFLOW: entry, col.link_prefix(0) + col.LINK_SPAN_ID: "22" * 8,
           col.link_prefix(0) + col.ATTRIBUTES_OVERFLOW: entry}
    [rs] = rows_to_resource_spans([row])
    span = rs.scope_spans[0].spans[0]
    late = common_pb2.KeyValue(key="late", value=common_pb2.AnyValue(int_value=5))
    for attributes in (rs.resource.attributes, rs.scope_spans[0].scope.attributes, span.attributes,
                       span.events[0].attributes, span.links[0].attributes):
        assert list(attributes) == [late]
