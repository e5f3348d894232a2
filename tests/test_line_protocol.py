"""cnosdb/line_protocol.py: exact output for representative spans, and OTLP → line protocol → rows → OTLP round trips.

The rows are made by `parse_line_protocol` below, a small parser with CnosDB's rules (v2.4.3
`line_protocol/parser.rs`): escapes removed only before `,` space `=` in names and tag values, `\\\\` and
`\\"` unescaped in string fields, unsuffixed numbers as DOUBLE, tags and fields sorted and de-duplicated.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from cnosdb_jaeger_storage.cnosdb.line_protocol import AttributeBudget, Encoder, encode_resource_spans
from cnosdb_jaeger_storage.model import span_rows

T0 = 1_700_000_000_123_456_789
TRACE = bytes(range(16))
SPAN = bytes(range(1, 9))
PARENT = bytes(range(9, 17))


# --- a line-protocol parser with CnosDB's rules (test only) -----------------------------------------


class LineProtocolError(ValueError):
    pass


def _name(text: str, i: int, stops: str) -> tuple[str, int]:
    """A measurement, tag key/value or field key from `i` to an unescaped stop character."""
    out = []
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in ", =\\\"'":
                raise LineProtocolError(f"bad escape at {i}: {text[i:i + 2]!r}")
            if text[i + 1] not in ", =":
                out.append(c)  # CnosDB keeps this backslash
            out.append(text[i + 1])
            i += 2
            continue
        if c in stops:
            return "".join(out), i
        if c == "\n":
            raise LineProtocolError(f"newline inside a name at {i}")
        out.append(c)
        i += 1
    return "".join(out), i


def _field_value(text: str, i: int) -> tuple[Any, int]:
    if text[i] == '"':
        out = []
        i += 1
        while True:
            c = text[i]
            if c == "\\":
                if text[i + 1] not in "\\\"'":
                    raise LineProtocolError(f"bad string escape at {i}")
                if text[i + 1] == "'":
                    out.append("\\")
                out.append(text[i + 1])
                i += 2
            elif c == '"':
                return "".join(out), i + 1
            else:
                out.append(c)
                i += 1
    end = i
    while end < len(text) and text[end] not in ", \n":
        end += 1
    raw = text[i:end]
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True, end
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False, end
    if raw.endswith("i"):
        return int(raw[:-1]), end
    return float(raw), end


def parse_line_protocol(text: str) -> list[dict[str, Any]]:
    """Each line as the row `SELECT *` would give: tags (stored form), fields, `time` as int ns."""
    rows = []
    i = 0
    while i < len(text):
        if text[i] == "\n":
            i += 1
            continue
        if text[i] == "#":
            raise LineProtocolError("a line starts with '#'")
        _, i = _name(text, i, ", ")
        tags: list[tuple[str, Any]] = []
        while text[i] == ",":
            key, i = _name(text, i + 1, "=")
            value, i = _name(text, i + 1, ", ")
            if not value:
                raise LineProtocolError(f"empty tag value for {key!r}")
            tags.append((key, value))
        assert text[i] == " "
        fields: list[tuple[str, Any]] = []
        separator = " "
        while separator in " ," and text[i] == separator:
            if separator == " " and fields:
                break
            key, i = _name(text, i + 1, "=")
            value, i = _field_value(text, i + 1)
            fields.append((key, value))
            separator = ","
        assert fields, "a line needs a field"
        assert text[i] == " "
        end = text.find("\n", i + 1)
        end = len(text) if end < 0 else end
        stamp = int(text[i + 1:end])
        i = end
        row: dict[str, Any] = {"time": stamp}
        for key, value in sorted(tags, key=lambda kv: kv[0]) + sorted(fields, key=lambda kv: kv[0]):
            row.setdefault(key, value)  # CnosDB keeps the first of equal keys
        assert len({k for k, _ in tags} & {k for k, _ in fields}) == 0, "a column both tag and field"
        rows.append(row)
    return rows


# --- helpers ---------------------------------------------------------------------------------------


def kv(key: str, **value: Any) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def span(**fields: Any) -> trace_pb2.Span:
    base = {"trace_id": TRACE, "span_id": SPAN, "name": "op", "kind": trace_pb2.Span.SPAN_KIND_SERVER,
            "start_time_unix_nano": T0, "end_time_unix_nano": T0 + 1500}
    base.update(fields)
    return trace_pb2.Span(**base)


def resource_spans(spans: list[trace_pb2.Span], service: str = "frontend", scope: str = "",
                   **resource: Any) -> trace_pb2.ResourceSpans:
    attributes = [kv("service.name", string_value=service)] if service is not None else []
    attributes = resource.pop("attributes", attributes)
    rs = trace_pb2.ResourceSpans(resource=resource_pb2.Resource(attributes=attributes, **resource))
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    ss.spans.extend(spans)
    return rs


def _sort_attributes(attributes: Any) -> None:
    ordered = sorted(attributes, key=lambda a: a.key)
    copies = [common_pb2.KeyValue(key=a.key, value=a.value) for a in ordered]
    del attributes[:]
    attributes.extend(copies)


def normalized(resource_spans_list: list[trace_pb2.ResourceSpans]) -> list[dict]:
    """As dicts, attributes sorted by key at every level: storage keeps no attribute order."""
    out = []
    for original in resource_spans_list:
        rs = trace_pb2.ResourceSpans()
        rs.CopyFrom(original)
        _sort_attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            _sort_attributes(ss.scope.attributes)
            for s in ss.spans:
                _sort_attributes(s.attributes)
                for item in list(s.events) + list(s.links):
                    _sort_attributes(item.attributes)
        out.append(json_format.MessageToDict(rs))
    return out


def round_trip(rs_list: list[trace_pb2.ResourceSpans]) -> list[trace_pb2.ResourceSpans]:
    lines = encode_resource_spans("jaeger_spans", rs_list)
    assert len(lines) == sum(len(ss.spans) for rs in rs_list for ss in rs.scope_spans)
    return span_rows.rows_to_resource_spans(parse_line_protocol("\n".join(lines)))


def assert_round_trip(rs_list: list[trace_pb2.ResourceSpans]) -> None:
    back = round_trip(rs_list)
    assert normalized(back) == normalized(rs_list)
    # Dict equality hides -0.0 vs 0.0 and NaN payloads; the bytes do not.
    assert [b.SerializeToString(deterministic=True) for b in _resorted(back)] == \
        [b.SerializeToString(deterministic=True) for b in _resorted(rs_list)]


def _resorted(rs_list: list[trace_pb2.ResourceSpans]) -> list[trace_pb2.ResourceSpans]:
    return [json_format.ParseDict(d, trace_pb2.ResourceSpans()) for d in normalized(rs_list)]


# --- golden output ---------------------------------------------------------------------------------

P = "ResourceSpans/ScopeSpans/Span/"
SVC = "ResourceSpans/Resource/attributes/service.name"

GOLDEN = {
    "minimal": (
        [resource_spans([span()])],
        f"jaeger_spans,{SVC}=frontend,{P}trace_id=000102030405060708090a0b0c0d0e0f,{P}span_id=0102030405060708,"
        f'{P}name=op,{P}kind_tag=SPAN_KIND_SERVER '
        f'{P}kind="SPAN_KIND_SERVER",{P}end_time_unix_nano={T0 + 1500},{P}duration_nano=1500 {T0}',
    ),
    "child-with-status-and-typed-attributes": (
        [resource_spans([span(
            parent_span_id=PARENT, trace_state="k=v", kind=trace_pb2.Span.SPAN_KIND_CLIENT, flags=1,
            attributes=[kv("http.method", string_value="GET"), kv("http.status_code", int_value=200),
                        kv("error", bool_value=True), kv("ratio", double_value=0.25)],
            status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="boom"))],
            scope="lib")],
        f"jaeger_spans,{SVC}=frontend,ResourceSpans/ScopeSpans/InstrumentationScope/name=lib,"
        f"{P}trace_id=000102030405060708090a0b0c0d0e0f,{P}span_id=0102030405060708,"
        f"{P}parent_span_id=090a0b0c0d0e0f10,{P}trace_state=k\\=v,{P}name=op,{P}Status/code=STATUS_CODE_ERROR,"
        f"{P}kind_tag=SPAN_KIND_CLIENT "
        f'{P}kind="SPAN_KIND_CLIENT",{P}end_time_unix_nano={T0 + 1500},{P}duration_nano=1500,'
        f'{P}attributes/http.method="GET",{P}attributes/http.status_code="200",{P}attributes/error="true",'
        f'{P}attributes/ratio="0.25",'
        f'{P}attribute_types="http.status_code=int,error=bool,ratio=double",'
        f'{P}Status/message="boom",{P}flags=1 {T0}',
    ),
    "event-link-resource-scope": (
        [trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(
                attributes=[kv("service.name", string_value="svc"), kv("host", string_value="h1"),
                            kv("pid", int_value=7)], dropped_attributes_count=2),
            schema_url="https://opentelemetry.io/schemas/1.21.0",
            scope_spans=[trace_pb2.ScopeSpans(
                scope=common_pb2.InstrumentationScope(name="io.lib", version="2.0",
                                                      attributes=[kv("s", string_value="x")]),
                schema_url="https://scope",
                spans=[span(
                    events=[trace_pb2.Span.Event(time_unix_nano=T0 + 10, name="log",
                                                 attributes=[kv("n", int_value=1)])],
                    links=[trace_pb2.Span.Link(trace_id=TRACE, span_id=PARENT, trace_state="a=b", flags=257,
                                               attributes=[kv("opentracing.ref_type",
                                                              string_value="follows_from")])],
                    dropped_attributes_count=1, dropped_events_count=2, dropped_links_count=3)])])],
        f"jaeger_spans,{SVC}=svc,ResourceSpans/ScopeSpans/InstrumentationScope/name=io.lib,"
        f"ResourceSpans/ScopeSpans/InstrumentationScope/version=2.0,"
        f"{P}trace_id=000102030405060708090a0b0c0d0e0f,{P}span_id=0102030405060708,{P}name=op,"
        f"{P}kind_tag=SPAN_KIND_SERVER "
        f'{P}kind="SPAN_KIND_SERVER",{P}end_time_unix_nano={T0 + 1500},{P}duration_nano=1500,'
        f'{P}Event_0/time_unix_nano={T0 + 10},{P}Event_0/time_unix_nano_exact={T0 + 10}i,'
        f'{P}Event_0/name="log",{P}Event_0/attributes/n="1",'
        f'{P}Event_0/attribute_types="n=int",'
        f'{P}Link_0/trace_id="000102030405060708090a0b0c0d0e0f",{P}Link_0/span_id="090a0b0c0d0e0f10",'
        f'{P}Link_0/trace_state="a=b",{P}Link_0/attributes/opentracing.ref_type="follows_from",'
        f"{P}Link_0/flags=257,"
        f"{P}dropped_attributes_count=1,{P}dropped_events_count=2,{P}dropped_links_count=3,"
        f'ResourceSpans/Resource/attributes/host="h1",ResourceSpans/Resource/attributes/pid="7",'
        f'ResourceSpans/Resource/attribute_types="pid=int",'
        f"ResourceSpans/Resource/dropped_attributes_count=2,"
        f'ResourceSpans/schema_url="https://opentelemetry.io/schemas/1.21.0",'
        f'ResourceSpans/ScopeSpans/InstrumentationScope/attributes/s="x",'
        f'ResourceSpans/ScopeSpans/schema_url="https://scope" {T0}',
    ),
    "hostile-names": (
        [resource_spans([span(name="GET /a b,c=d\\", attributes=[
            kv('we"ird key,=\\\n', string_value='va"l\\ue\n'), kv("#hash", string_value="")])],
            service="svc\\ one\r\n")],
        f"jaeger_spans,{SVC}=svc\\\\\\ one\\\"\\',"
        f"{P}trace_id=000102030405060708090a0b0c0d0e0f,{P}span_id=0102030405060708,"
        f"{P}name=GET\\ /a\\ b\\,c\\=d\\\\,{P}kind_tag=SPAN_KIND_SERVER "
        f'{P}kind="SPAN_KIND_SERVER",{P}end_time_unix_nano={T0 + 1500},{P}duration_nano=1500,'
        f'{P}attributes/we"ird\\ key\\,\\=\\\\\\\'="va\\"l\\\\ue\n",{P}attributes/#hash="" {T0}',
    ),
    "no-service-unset-ids-unknown-kind": (
        [resource_spans([trace_pb2.Span(kind=9, start_time_unix_nano=5, end_time_unix_nano=3)], service=None)],
        f'jaeger_spans,{P}kind_tag=9 {P}kind="9",{P}end_time_unix_nano=3,{P}duration_nano=-2 5',
    ),
}


@pytest.mark.parametrize(("rs_list", "expected"), GOLDEN.values(), ids=GOLDEN.keys())
def test_golden_line(rs_list, expected):
    assert encode_resource_spans("jaeger_spans", rs_list) == [expected]


def test_one_line_per_span_across_resources_and_scopes():
    rs1 = resource_spans([span(name="a"), span(name="b")], service="s1", scope="x")
    rs1.scope_spans.add(scope=common_pb2.InstrumentationScope(name="y")).spans.append(span(name="c"))
    rs2 = resource_spans([span(name="d")], service="s2")
    lines = encode_resource_spans("t", [rs1, rs2])
    assert len(lines) == 4
    assert [line.split(f"{P}name=")[1].split(",")[0] for line in lines] == ["a", "b", "c", "d"]
    assert all("\n" not in line for line in lines)


def test_table_name_is_escaped_or_refused():
    lines = encode_resource_spans("my spans", [resource_spans([span()])])
    assert lines[0].startswith("my\\ spans,")
    with pytest.raises(ValueError):
        encode_resource_spans("#spans", [resource_spans([span()])])


# --- round trips -----------------------------------------------------------------------------------

ALL_VALUES = [
    kv("str", string_value="text"),
    kv("empty-str", string_value=""),
    kv("int", int_value=-42),
    kv("int-max", int_value=2**63 - 1),
    kv("int-min", int_value=-(2**63)),
    kv("true", bool_value=True),
    kv("false", bool_value=False),
    kv("dbl-integral", double_value=72.0),
    kv("dbl-fraction", double_value=72.5),
    kv("dbl-big", double_value=1e20),
    kv("dbl-1e15", double_value=1e15),
    kv("dbl-below-1e15", double_value=999_999_999_999_999.0),
    kv("dbl-tiny", double_value=5e-324),
    kv("dbl-tenth", double_value=0.1),
    kv("dbl-nan", double_value=math.nan),
    kv("dbl-inf", double_value=math.inf),
    kv("dbl-ninf", double_value=-math.inf),
    kv("dbl-negzero", double_value=-0.0),
    kv("dbl-zero", double_value=0.0),
    kv("bytes", bytes_value=b"\x00\xff\x10binary\n"),
    kv("bytes-empty", bytes_value=b""),
    kv("array", array_value=common_pb2.ArrayValue(values=[
        common_pb2.AnyValue(string_value="a\"\\"), common_pb2.AnyValue(int_value=3),
        common_pb2.AnyValue(double_value=1.5), common_pb2.AnyValue(bool_value=False),
        common_pb2.AnyValue(bytes_value=b"\x01"),
        common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[common_pb2.AnyValue(int_value=1)]))])),
    kv("array-empty", array_value=common_pb2.ArrayValue()),
    kv("kvlist", kvlist_value=common_pb2.KeyValueList(values=[
        kv("inner", string_value="v"), kv("nested", kvlist_value=common_pb2.KeyValueList(values=[
            kv("deep", double_value=2.0)]))])),
    kv("kvlist-empty", kvlist_value=common_pb2.KeyValueList()),
]

HOSTILE_TEXT = ["O'Brien", 'say "hi"', "back\\slash", "trailing\\", "\\", "new\nline", "cr\rhere", "tab\there",
                "k=v, x=y", "#hash", "유니코드 🚀", " lead space", "\\'\\\"", "end\r\n"]


def _typed_span(i: int = 0, **extra: Any) -> trace_pb2.Span:
    return span(span_id=(i + 1).to_bytes(8, "big"), attributes=ALL_VALUES, **extra)


ROUND_TRIPS = {
    "minimal": lambda: [resource_spans([span()])],
    "all-value-types-every-level": lambda: [trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[kv("service.name", string_value="svc"), *ALL_VALUES]),
        scope_spans=[trace_pb2.ScopeSpans(
            scope=common_pb2.InstrumentationScope(name="s", version="1", attributes=ALL_VALUES),
            spans=[_typed_span(
                events=[trace_pb2.Span.Event(time_unix_nano=T0 - T0 % 256 + 512, name="e", attributes=ALL_VALUES)],
                links=[trace_pb2.Span.Link(trace_id=TRACE, span_id=PARENT, attributes=ALL_VALUES)])])])],
    "events-links-status-counts": lambda: [trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[kv("service.name", string_value="svc")],
                                       dropped_attributes_count=3),
        schema_url="https://opentelemetry.io/schemas/1.21.0",
        scope_spans=[trace_pb2.ScopeSpans(
            scope=common_pb2.InstrumentationScope(name="lib", version="0.1", dropped_attributes_count=4),
            schema_url="https://scope/1",
            spans=[span(
                parent_span_id=PARENT, trace_state="congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", flags=0x301,
                dropped_attributes_count=5, dropped_events_count=6, dropped_links_count=7,
                status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_OK, message="fine"),
                events=[trace_pb2.Span.Event(time_unix_nano=T0 - T0 % 256 + 256 * k, name=f"ev{k}" if k else "",
                                             dropped_attributes_count=k,
                                             attributes=[kv("i", int_value=k), kv("msg", string_value="m")])
                        for k in range(12)],
                links=[trace_pb2.Span.Link(trace_id=bytes([k] * 16), span_id=bytes([k + 1] * 8),
                                           trace_state="x=1" if k else "", flags=k, dropped_attributes_count=k,
                                           attributes=[kv("opentracing.ref_type", string_value="follows_from")])
                       for k in range(3)]),
                span(span_id=b"\x02" * 8, status=trace_pb2.Status(message="unset but described")),
                span(span_id=b"\x03" * 8, status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR)),
            ])])],
    "kinds-and-times": lambda: [resource_spans([
        span(span_id=bytes([k + 1] * 8), kind=k, start_time_unix_nano=T0 + k,
             end_time_unix_nano=T0 + k + 10**k) for k in range(6)]
        + [span(span_id=b"\x09" * 8, start_time_unix_nano=0, end_time_unix_nano=0),
           span(span_id=b"\x0a" * 8, end_time_unix_nano=0),
           span(span_id=b"\x0b" * 8, end_time_unix_nano=T0 - 1000)])],
    "groups-resources-and-scopes": lambda: [
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[kv("service.name", string_value="a"),
                                                       kv("host", string_value="h1")]),
            scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="x"),
                                              spans=[_typed_span(1), _typed_span(2)]),
                         trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="y"),
                                              spans=[_typed_span(3)]),
                         trace_pb2.ScopeSpans(spans=[_typed_span(4)])]),
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[kv("service.name", string_value="a"),
                                                       kv("host", string_value="h2")]),
            scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="x"),
                                              spans=[_typed_span(5)])]),
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[kv("service.name", string_value="b")]),
            schema_url="u",
            scope_spans=[trace_pb2.ScopeSpans(spans=[_typed_span(6)])]),
        trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[_typed_span(7)])]),
    ],
    "hostile-everything": lambda: [trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[kv("service.name", string_value=HOSTILE_TEXT[k])]
                                       + [kv(t, string_value=t) for t in HOSTILE_TEXT]),
        schema_url=HOSTILE_TEXT[k],
        scope_spans=[trace_pb2.ScopeSpans(
            scope=common_pb2.InstrumentationScope(name=HOSTILE_TEXT[-k - 1], version=HOSTILE_TEXT[k],
                                                  attributes=[kv(t, int_value=3) for t in HOSTILE_TEXT]),
            schema_url=HOSTILE_TEXT[-k - 1],
            spans=[span(span_id=bytes([k + 1] * 8), name=HOSTILE_TEXT[k], trace_state=HOSTILE_TEXT[-k - 1],
                        attributes=[kv(t, string_value=u) for t, u in zip(HOSTILE_TEXT, HOSTILE_TEXT[::-1],
                                                                          strict=True)]
                        + [kv(t + "/typed", bytes_value=t.encode()) for t in HOSTILE_TEXT],
                        status=trace_pb2.Status(code=2, message=HOSTILE_TEXT[k]),
                        events=[trace_pb2.Span.Event(name=t, time_unix_nano=T0 - T0 % 256,
                                                     attributes=[kv(t, string_value=t)]) for t in HOSTILE_TEXT],
                        links=[trace_pb2.Span.Link(trace_id=TRACE, span_id=SPAN, trace_state=t,
                                                   attributes=[kv(t, double_value=0.5)]) for t in HOSTILE_TEXT])])])
        for k in range(len(HOSTILE_TEXT))],
    "typed-service-name": lambda: [resource_spans([span()], service=None, attributes=[
        kv("service.name", int_value=12), kv("other", string_value="x")])],
}


@pytest.mark.parametrize("make", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip(make):
    assert_round_trip(make())


@pytest.mark.parametrize("value", HOSTILE_TEXT, ids=[repr(t) for t in HOSTILE_TEXT])
def test_hostile_text_survives_verbatim(value):
    rs = resource_spans([span(name=value, attributes=[kv(value, string_value=value)])], service=value,
                        scope=value)
    (back,) = round_trip([rs])
    assert back.resource.attributes[0].key == "service.name"
    assert back.resource.attributes[0].value.string_value == value
    assert back.scope_spans[0].scope.name == value
    (s,) = back.scope_spans[0].spans
    assert s.name == value
    assert [(a.key, a.value.string_value) for a in s.attributes] == [(value, value)]


def test_rows_keep_order_within_a_group():
    spans = [span(span_id=bytes([k + 1] * 8), start_time_unix_nano=T0 - k) for k in range(5)]
    (back,) = round_trip([resource_spans(spans)])
    assert [s.span_id for s in back.scope_spans[0].spans] == [s.span_id for s in spans]


def test_unset_attribute_value_is_dropped():
    rs = resource_spans([span(attributes=[kv("unset"), kv("set", string_value="x")])])
    (back,) = round_trip([rs])
    assert [a.key for a in back.scope_spans[0].spans[0].attributes] == ["set"]


def test_event_time_is_exact_though_cnosdbs_column_is_a_double():
    event_time = T0 + 1  # not a double: CnosDB's column holds the nearest one (256 ns apart here)
    (back,) = round_trip([resource_spans([span(events=[trace_pb2.Span.Event(time_unix_nano=event_time)])])])
    assert back.scope_spans[0].spans[0].events[0].time_unix_nano == event_time


# --- the embedded engine's own parser agrees -------------------------------------------------------


@pytest.mark.parametrize("make", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_embedded_engine_stores_the_rows_the_parser_expects(tmp_path, make):
    import pyarrow as pa

    from cnosdb_lite.engine import Engine

    rs_list = make()
    lines = encode_resource_spans("jaeger_spans", rs_list)
    expected = parse_line_protocol("\n".join(lines))
    engine = Engine(tmp_path)
    try:
        engine.write_lines("cnosdb", "public", "\n".join(lines), "ns")
        table = engine.execute("cnosdb", "public", "SELECT * FROM jaeger_spans")
    finally:
        engine.close()
    assert table is not None
    table = table.set_column(table.schema.get_field_index("time"), "time", table.column("time").cast(pa.int64()))
    rows = [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]

    def identity(row: dict) -> tuple:
        return row.get(span_rows.TRACE_ID), row.get(span_rows.SPAN_ID), row["time"]

    position = {identity(row): i for i, row in enumerate(expected)}
    assert len(position) == len(expected) == len(rows)
    rows.sort(key=lambda row: position[identity(row)])
    assert rows == expected
    assert normalized(span_rows.rows_to_resource_spans(rows)) == normalized(rs_list)


# --- the attribute budget (docs/schema.md, "Attributes beyond the budget") ---------------------------


def _budgeted(rs_list: list[trace_pb2.ResourceSpans], per_level: int | None = None, columns: int | None = None,
              known: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], Encoder]:
    budget = AttributeBudget(per_level, columns)
    budget.learn(known)
    encoder = Encoder(budget)
    return parse_line_protocol("\n".join(encode_resource_spans("jaeger_spans", rs_list, encoder))), encoder


def _every_level(n: int, prefix: str = "k") -> trace_pb2.ResourceSpans:
    """n typed attributes on the resource, the scope, the span, one event and one link."""
    def attributes(level: str) -> list[common_pb2.KeyValue]:
        return [kv(f"{prefix}.{level}.{i}", **[{"string_value": f"v{i}"}, {"int_value": i}, {"bool_value": True},
                                               {"double_value": i + 0.5}, {"bytes_value": b"\x00\xff"},
                                               {"array_value": {"values": [{"string_value": "x"}]}}][i % 6])
                for i in range(n)]
    s = span(attributes=attributes("span"),
             events=[trace_pb2.Span.Event(time_unix_nano=T0 + 5, name="e", attributes=attributes("event"))],
             links=[trace_pb2.Span.Link(trace_id=TRACE, span_id=PARENT, attributes=attributes("link"))])
    rs = resource_spans([s], attributes=[kv("service.name", string_value="svc"), *attributes("resource")])
    rs.scope_spans[0].scope.attributes.extend(attributes("scope"))
    return rs


def test_attributes_beyond_the_per_level_budget_overflow_and_read_back_exactly() -> None:
    rs = _every_level(12)
    rows, encoder = _budgeted([rs], per_level=5)
    [row] = rows
    assert normalized(span_rows.rows_to_resource_spans(rows)) == normalized([rs])
    for overflow, level in ((span_rows.RESOURCE_ATTRIBUTES_OVERFLOW, "resource"),
                            (span_rows.SCOPE_ATTRIBUTES_OVERFLOW, "scope"),
                            (span_rows.SPAN_ATTRIBUTES_OVERFLOW, "span"),
                            (P + "Event_0/attributes_overflow", "event"), (P + "Link_0/attributes_overflow", "link")):
        assert [k for k, _ in span_rows.decode_overflow(row[overflow])] == [f"k.{level}.{i}" for i in range(5, 12)]
    assert sum(1 for c in row if span_rows.ATTRIBUTE_COLUMN.fullmatch(c) and c != SVC) == 5 * 5
    assert encoder.take_overflowed() == {"resource": 7, "scope": 7, "span": 7, "event": 7, "link": 7}
    assert encoder.take_overflowed() == {}


def test_spans_within_the_budget_are_encoded_as_without_one() -> None:
    rs = _every_level(5)
    assert encode_resource_spans("jaeger_spans", [rs], Encoder(AttributeBudget(5, 25))) == \
        encode_resource_spans("jaeger_spans", [rs])


def test_a_full_table_gives_new_keys_no_column_but_keeps_the_columns_it_has() -> None:
    known = (P + "attributes/old", "ResourceSpans/Resource/attributes/host", SVC)
    s = span(attributes=[kv("new", string_value="n"), kv("old", int_value=1)])
    rs = resource_spans([s], attributes=[kv("service.name", string_value="svc"), kv("host", string_value="h"),
                                         kv("zone", string_value="z")])
    rows, encoder = _budgeted([rs], columns=2, known=known)
    [row] = rows
    assert row[P + "attributes/old"] == "1" and P + "attributes/new" not in row
    assert row[SVC] == "svc" and row["ResourceSpans/Resource/attributes/host"] == "h"
    assert span_rows.decode_overflow(row[span_rows.SPAN_ATTRIBUTES_OVERFLOW])[0][0] == "new"
    assert span_rows.decode_overflow(row[span_rows.RESOURCE_ATTRIBUTES_OVERFLOW])[0][0] == "zone"
    assert normalized(span_rows.rows_to_resource_spans(rows)) == normalized([rs])
    assert encoder.budget.known == {P + "attributes/old", "ResourceSpans/Resource/attributes/host"}


def test_the_table_budget_admits_new_columns_until_it_is_full() -> None:
    budget = AttributeBudget(None, 3)
    encoder = Encoder(budget)
    for i in range(5):
        encode_resource_spans("t", [resource_spans([span(attributes=[kv(f"a{i}", string_value="v")])])], encoder)
    assert budget.known == {P + f"attributes/a{i}" for i in range(3)}
    assert encoder.take_overflowed() == {"span": 2}


@pytest.mark.parametrize("key", ["back\\slash", 'quo"te', "new\nline", "100%_x", "a,b:c", "ünï 🚀", ""])
def test_hostile_overflowed_keys_and_values_read_back_exactly(key: str) -> None:
    s = span(attributes=[kv("first", string_value="1"), kv(key, string_value=key + '"\\%_\n'),
                         kv(key + "2", bytes_value=b"\\\x00")])
    rows, _ = _budgeted([resource_spans([s])], per_level=1)
    [row] = rows
    assert "\\" not in row[span_rows.SPAN_ATTRIBUTES_OVERFLOW]
    assert normalized(span_rows.rows_to_resource_spans(rows)) == normalized([resource_spans([s])])
