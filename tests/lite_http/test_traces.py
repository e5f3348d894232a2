"""CnosDB's native `POST /api/v1/traces`: OTLP protobuf flattened to one row per span (facts 4.1)."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

R = "ResourceSpans/"
RES = R + "Resource/"
SC = R + "ScopeSpans/InstrumentationScope/"
SP = R + "ScopeSpans/Span/"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
START = 1690510331000000000
_tables = itertools.count()


def new_table() -> str:
    return f"spans{next(_tables)}"


def post(client, request: ExportTraceServiceRequest | bytes, table: str | None, **headers) -> object:
    body = request if isinstance(request, bytes) else request.SerializeToString()
    sent = {**PROTOBUF, **({"table": table} if table else {}), **headers}
    return client.request("POST", "/api/v1/traces", body, headers={k: v for k, v in sent.items() if v is not None})


def ingest(client, request: ExportTraceServiceRequest, table: str, db: str = "public") -> None:
    reply = post(client, request, table, db=db)
    assert (reply.status, reply.body) == (200, b""), reply.text


def rows(client, table: str, db: str = "public") -> list[dict]:
    reply = client.ok_sql(f'SELECT * FROM {table} ORDER BY "{SP}span_id"', db=db)
    return json.loads(reply.body) if reply.body else []


def describe(client, table: str, db: str = "public") -> dict[str, tuple[str, str]]:
    reply = client.ok_sql(f"DESCRIBE TABLE {table}", db=db)
    return {r["column_name"]: (r["data_type"], r["column_type"]) for r in json.loads(reply.body)}


def one_span_request(**span_fields) -> tuple[ExportTraceServiceRequest, Span]:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "svc"
    fields = {"trace_id": TRACE_ID, "span_id": b"\x00" * 7 + b"\x01", "name": "op",
              "start_time_unix_nano": START, "end_time_unix_nano": START + 1000, **span_fields}
    span = resource_spans.scope_spans.add().spans.add(**fields)
    return request, span


def full_request() -> ExportTraceServiceRequest:
    """Two spans in one ResourceSpans/scope; the first has everything, the second almost nothing."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add(schema_url="https://schema/r")
    resource = resource_spans.resource
    resource.attributes.add(key="service.name").value.string_value = "frontend"
    resource.attributes.add(key="host.name").value.string_value = "Box-1"
    resource.attributes.add(key="pid").value.int_value = 42
    resource.dropped_attributes_count = 1
    scope_spans = resource_spans.scope_spans.add(schema_url="https://schema/s")
    scope_spans.scope.name = "io.lib"
    scope_spans.scope.version = "1.2"
    scope_spans.scope.attributes.add(key="lib.flag").value.bool_value = True
    first = scope_spans.spans.add(
        trace_id=TRACE_ID, span_id=bytes.fromhex("00f067aa0ba902b7"), trace_state="k=v", name="GET /a",
        kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=START, end_time_unix_nano=START + 1_500_000,
        flags=257, dropped_attributes_count=2, dropped_events_count=3, dropped_links_count=4,
    )
    first.attributes.add(key="http.method").value.string_value = "GET"
    first.attributes.add(key="http.status_code").value.int_value = 200
    first.attributes.add(key="ratio").value.double_value = 72.0
    event = first.events.add(time_unix_nano=START + 10, name="retry", dropped_attributes_count=5)
    event.attributes.add(key="attempt").value.int_value = 2
    link = first.links.add(trace_id=b"\x11" * 16, span_id=b"\x22" * 8, trace_state="lk", flags=1)
    link.attributes.add(key="why").value.string_value = "batch"
    first.status.code = Status.STATUS_CODE_ERROR
    first.status.message = "boom"
    second = scope_spans.spans.add(
        trace_id=TRACE_ID, span_id=bytes.fromhex("00f067aa0ba902b8"), parent_span_id=first.span_id,
        name="SELECT", kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=START + 100,
        end_time_unix_nano=START + 200,
    )
    second.attributes.add(key="db.system").value.string_value = "cnosdb"
    return request


FIRST_ROW = {
    "time": "2023-07-28T02:12:11",
    RES + "attributes/service.name": "frontend",
    RES + "attributes/host.name": "Box-1",
    RES + "attributes/pid": "42",
    RES + "dropped_attributes_count": 1.0,
    R + "schema_url": "https://schema/r",
    SC + "name": "io.lib",
    SC + "version": "1.2",
    SC + "attributes/lib.flag": "true",
    SC + "dropped_attributes_count": 0.0,
    R + "ScopeSpans/schema_url": "https://schema/s",
    SP + "trace_id": "0af7651916cd43dd8448eb211c80319c",
    SP + "span_id": "00f067aa0ba902b7",
    SP + "parent_span_id": "",
    SP + "trace_state": "k=v",
    SP + "name": "GET /a",
    SP + "kind": "SPAN_KIND_SERVER",
    SP + "flags": 257.0,
    SP + "end_time_unix_nano": float(START + 1_500_000),
    SP + "attributes/http.method": "GET",
    SP + "attributes/http.status_code": "200",
    SP + "attributes/ratio": "72",
    SP + "dropped_attributes_count": 2.0,
    SP + "Event_0/time_unix_nano": float(START + 10),
    SP + "Event_0/name": "retry",
    SP + "Event_0/attributes/attempt": "2",
    SP + "Event_0/dropped_attributes_count": 5.0,
    SP + "dropped_events_count": 3.0,
    SP + "Link_0/trace_id": "11" * 16,
    SP + "Link_0/span_id": "22" * 8,
    SP + "Link_0/trace_state": "lk",
    SP + "Link_0/attributes/why": "batch",
    SP + "Link_0/dropped_attributes_count": 0.0,
    SP + "Link_0/flags": 1.0,
    SP + "dropped_links_count": 4.0,
    SP + "Status/code": "STATUS_CODE_ERROR",
    SP + "Status/message": "boom",
    SP + "duration_nano": 1_500_000.0,
}

# The second span as CnosDB stores it: its own span columns, the resource's and scope's, and the first span's
# attributes, event, link and status, which CnosDB's writer leaks (it never clears its field map between spans).
_LEAKED = tuple(SP + part for part in ("attributes/", "Event_", "Link_", "Status/"))
SECOND_ROW = {
    **{k: v for k, v in FIRST_ROW.items() if k.startswith((RES, SC, *_LEAKED)) or "schema_url" in k},
    "time": "2023-07-28T02:12:11.000000100",
    SP + "trace_id": "0af7651916cd43dd8448eb211c80319c",
    SP + "span_id": "00f067aa0ba902b8",
    SP + "parent_span_id": "00f067aa0ba902b7",
    SP + "trace_state": "",
    SP + "name": "SELECT",
    SP + "kind": "SPAN_KIND_CLIENT",
    SP + "flags": 0.0,
    SP + "end_time_unix_nano": float(START + 200),
    SP + "attributes/db.system": "cnosdb",
    SP + "dropped_attributes_count": 0.0,
    SP + "dropped_events_count": 0.0,
    SP + "dropped_links_count": 0.0,
    SP + "duration_nano": 100.0,
}

TAG_COLUMNS = {
    RES + "attributes/service.name", SC + "name", SC + "version", SP + "trace_id", SP + "span_id",
    SP + "parent_span_id", SP + "trace_state", SP + "name", SP + "Status/code",
}


def test_full_request_schema(client):
    table = new_table()
    ingest(client, full_request(), table)
    columns = describe(client, table)
    expected = {"time": ("TIMESTAMP(NANOSECOND)", "TIME")}
    for name, value in {**FIRST_ROW, **SECOND_ROW}.items():
        if name == "time":
            continue
        if name in TAG_COLUMNS:
            expected[name] = ("STRING", "TAG")
        else:
            expected[name] = ("DOUBLE" if isinstance(value, float) else "STRING", "FIELD")
    assert columns == expected


def test_full_request_rows_leak_between_spans_as_cnosdb_stores_them(client):
    table = new_table()
    ingest(client, full_request(), table)
    first, second = rows(client, table)
    assert first == FIRST_ROW
    assert second == SECOND_ROW


def test_scopes_leak_within_a_resource_but_resources_do_not(client):
    request = ExportTraceServiceRequest()
    for i, service in enumerate(["a", "b"]):
        resource_spans = request.resource_spans.add()
        if service == "a":
            resource_spans.resource.attributes.add(key="service.name").value.string_value = service
            resource_spans.resource.attributes.add(key="only.a").value.string_value = "x"
        for j in range(2):
            scope_spans = resource_spans.scope_spans.add()
            if j == 0:
                scope_spans.scope.name = f"scope{i}"
            scope_spans.spans.add(trace_id=TRACE_ID, span_id=bytes([0] * 7 + [i * 2 + j]), name="s",
                                  start_time_unix_nano=START, end_time_unix_nano=START)
    table = new_table()
    ingest(client, request, table)
    got = [
        (r.get(RES + "attributes/service.name"), r.get(RES + "attributes/only.a"), r.get(SC + "name"))
        for r in rows(client, table)
    ]
    assert got == [("a", "x", "scope0"), ("a", "x", "scope0"), (None, None, "scope1"), (None, None, "scope1")]


def _array() -> AnyValue:
    value = AnyValue()
    value.array_value.values.add().string_value = "A b"
    value.array_value.values.add().int_value = -3
    value.array_value.values.add().double_value = 1.0
    value.array_value.values.add().bool_value = False
    return value


def _kvlist() -> AnyValue:
    value = AnyValue()
    value.kvlist_value.values.add(key="K").value.string_value = 'q"'
    value.kvlist_value.values.add(key="none")
    return value


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (AnyValue(string_value="Mixed Case é"), "Mixed Case é"),
        (AnyValue(bool_value=True), "true"),
        (AnyValue(bool_value=False), "false"),
        (AnyValue(int_value=-9007199254740993), "-9007199254740993"),
        (AnyValue(double_value=72.5), "72.5"),
        (AnyValue(double_value=72.0), "72"),
        (AnyValue(double_value=1e20), "100000000000000000000"),
        (AnyValue(double_value=1e-7), "0.0000001"),
        (AnyValue(double_value=float("nan")), "NaN"),
        (AnyValue(bytes_value=b"\x01\xff"), "anyvalue { value: some(bytesvalue([1, 255])) }"),
        (_array(), 'anyvalue { value: some(arrayvalue(arrayvalue { values: [anyvalue { value: some('
                   'stringvalue("a b")) }, anyvalue { value: some(intvalue(-3)) }, anyvalue { value: '
                   'some(doublevalue(1.0)) }, anyvalue { value: some(boolvalue(false)) }] })) }'),
        (_kvlist(), 'anyvalue { value: some(kvlistvalue(keyvaluelist { values: [keyvalue { key: "k", '
                    'value: some(anyvalue { value: some(stringvalue("q\\"")) }) }, keyvalue { key: '
                    '"none", value: none }] })) }'),
        (AnyValue(), ""),
    ],
    ids=["string", "true", "false", "int", "double", "double-integral", "double-1e20", "double-small",
         "nan", "bytes", "array", "kvlist", "empty-anyvalue"],
)
def test_attribute_stringification(client, value, stored):
    request, span = one_span_request()
    span.attributes.add(key="attr").value.CopyFrom(value)
    table = new_table()
    ingest(client, request, table)
    (row,) = rows(client, table)
    assert row[SP + "attributes/attr"] == stored


def test_attribute_without_value_is_skipped(client):
    request, span = one_span_request()
    span.attributes.add(key="novalue")
    table = new_table()
    ingest(client, request, table)
    assert SP + "attributes/novalue" not in describe(client, table)


def test_non_string_service_name_is_dropped(client):
    request, _ = one_span_request()
    request.resource_spans[0].resource.attributes[0].value.int_value = 7
    table = new_table()
    ingest(client, request, table)
    columns = describe(client, table)
    assert not any("service.name" in name for name in columns)


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("plain", "plain"),
        ("with space, comma=equals", "with space, comma=equals"),
        ('say "hi" now', 'say \\"hi\\" now'),  # serde_json text of the string, outer quotes trimmed
        ("ünïcødé ✓", "ünïcødé ✓"),
        ("back\\slash", "back\\\\slash"),
    ],
    ids=["plain", "separators", "quotes", "unicode", "backslash"],
)
def test_tag_values_are_json_escaped_text(client, name, stored):
    request, _ = one_span_request(name=name)
    table = new_table()
    ingest(client, request, table)
    (row,) = rows(client, table)
    assert row[SP + "name"] == stored


def test_string_fields_keep_any_text(client):
    hostile = 'a "quoted" \\ back\nslash, comma=eq \t ✓'
    request, span = one_span_request()
    span.attributes.add(key="weird key, with=stuff").value.string_value = hostile
    table = new_table()
    ingest(client, request, table)
    (row,) = rows(client, table)
    assert row[SP + "attributes/weird key, with=stuff"] == hostile


def test_unknown_enum_numbers_read_as_defaults_and_duration_wraps(client):
    request, span = one_span_request(kind=42, start_time_unix_nano=START + 10, end_time_unix_nano=START)
    span.status.code = 9
    table = new_table()
    ingest(client, request, table)
    (row,) = rows(client, table)
    assert row[SP + "kind"] == "SPAN_KIND_UNSPECIFIED"
    assert row[SP + "Status/code"] == "STATUS_CODE_UNSET"
    assert row[SP + "duration_nano"] == float(2**64 - 10)


def test_start_time_beyond_i64_is_422(client):
    request, _ = one_span_request(start_time_unix_nano=2**63)
    reply = post(client, request, new_table())
    assert reply.status == 422
    assert json.loads(reply.body) == {
        "error_code": "040016",
        "error_message": "Error parsing log message: Out of the time frame that can be saved",
    }


def test_tenant_db_and_table_come_from_headers(client):
    db = client.new_database()
    request, _ = one_span_request()
    reply = post(client, request, "by_header", tenant="cnosdb", db=db)
    assert reply.status == 200
    assert len(rows(client, "by_header", db=db)) == 1


def test_missing_database_is_an_engine_error(client):
    request, _ = one_span_request()
    reply = post(client, request, new_table(), db="no_such_db")
    assert reply.status == 422
    assert "no_such_db" in json.loads(reply.body)["error_message"]


def test_missing_table_header_is_422_040016(client):
    request, _ = one_span_request()
    reply = post(client, request, None)
    assert reply.status == 422
    assert json.loads(reply.body) == {
        "error_code": "040016",
        "error_message": "Error parsing log message: table param is None",
    }


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/x-protobuf; charset=utf-8", "Application/x-protobuf",
     "application/protobuf"],
    ids=["missing", "json", "with-parameter", "capitalised", "protobuf"],
)
def test_only_exact_protobuf_content_type_is_decoded(client, content_type):
    request, _ = one_span_request()
    reply = post(client, request, new_table(), **{"Content-Type": content_type})
    assert reply.status == 422
    assert json.loads(reply.body) == {
        "error_code": "040016",
        "error_message": "Error parsing log message: invalid log type: unsupported",
    }


def test_undecodable_body_is_422_040016(client):
    reply = post(client, b"\x0a\xff\xff\xff", new_table())
    assert reply.status == 422
    body = json.loads(reply.body)
    assert body["error_code"] == "040016"
    assert body["error_message"].startswith(
        "Error parsing log message: invalid log syntax: parse_protobuf_to_otlptrace error: "
    )


def test_gzip_body(client):
    request, _ = one_span_request()
    table = new_table()
    reply = post(client, gzip.compress(request.SerializeToString()), table, **{"Content-Encoding": "gzip"})
    assert reply.status == 200
    assert len(rows(client, table)) == 1


def test_empty_request_is_200(client):
    reply = post(client, ExportTraceServiceRequest(), new_table())
    assert (reply.status, reply.body) == (200, b"")


def test_one_series_per_span_even_with_equal_start_times(client):
    request, _ = one_span_request()
    spans = request.resource_spans[0].scope_spans[0].spans
    twin = spans.add()
    twin.CopyFrom(spans[0])
    twin.span_id = b"\x00" * 7 + b"\x02"
    table = new_table()
    ingest(client, request, table)
    assert [r[SP + "span_id"] for r in rows(client, table)] == ["0000000000000001", "0000000000000002"]
