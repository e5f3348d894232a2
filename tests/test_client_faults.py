"""Hostile input through real sockets and real clients: a client's fault is a 4xx or INVALID_ARGUMENT (or
NOT_FOUND) that says what was wrong, never a 5xx, INTERNAL or a traceback in the log; and names holding
NUL or other control characters are stored in a reversible form (docs/schema.md) and served back exactly.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from harness import RunningServer, running_server, server_config
from test_otlp_http import JSON, PROTOBUF, otlp_json, otlp_request, otlp_span, post, rpc_status

from cnosdb_jaeger_storage.cnosdb.sql import describe_table
from cnosdb_jaeger_storage.model import span_rows
from cnosdb_jaeger_storage.proto import (
    model_pb2,
    storage_v1_grpc,
    trace_pb2,
    trace_storage_grpc,
    trace_storage_pb2,
)
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as v1

HOUR_NS = 3600 * 10**9
BEYOND_I64 = 2**63  # the first nanosecond CnosDB's TIMESTAMP(NANOSECOND) cannot hold
LAST_STORABLE = 2**63 - 2  # i64::MAX itself falls in no storage bucket of CnosDB's (docs/schema.md)
CONTROLS = "".join(map(chr, [*range(0x00, 0x20), 0x7F]))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("faults"), query_http_addr="127.0.0.1:0")) as s:
        yield s


@pytest.fixture(autouse=True)
def no_server_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A client's fault is no server error: no traceback, no failed request logged (the server runs in this
    process). The writer's own line about a write CnosDB refused is the one record allowed."""
    caplog.set_level(logging.WARNING)
    yield
    bad = [r for r in caplog.records if r.exc_info or (r.levelno >= logging.WARNING
                                                       and r.name != "cnosdb_jaeger_storage.storage.writer")]
    assert not bad, [r.getMessage() for r in bad]


def otlp_url(server: RunningServer, path: str = "/v1/traces") -> str:
    return server.url("otlp_http") + path


def query(server: RunningServer, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url("query_http") + path, params=params, timeout=30)


def v1_reader(channel: grpc.Channel) -> storage_v1_grpc.SpanReaderPluginStub:
    return storage_v1_grpc.SpanReaderPluginStub(channel)


def v1_query(service: str, operation: str = "", tags: dict[str, str] | None = None) -> v1.TraceQueryParameters:
    now = time.time_ns()
    q = v1.TraceQueryParameters(service_name=service, operation_name=operation, tags=tags or {}, num_traces=20)
    q.start_time_min.FromNanoseconds(now - 24 * HOUR_NS)
    q.start_time_max.FromNanoseconds(now + HOUR_NS)
    return q


def v2_query(service: str, operation: str = "", attributes: dict[str, str] | None = None
             ) -> trace_storage_pb2.TraceQueryParameters:
    q = trace_storage_pb2.TraceQueryParameters(service_name=service, operation_name=operation, search_depth=20)
    for key, value in (attributes or {}).items():
        q.attributes.add(key=key, value=trace_storage_pb2.AnyValue(string_value=value))
    return q


def grpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        result = call()
        list(result) if not hasattr(result, "ByteSize") else None  # a stream fails while read
    return error.value


# --- times beyond CnosDB's range ------------------------------------------------------------------


def _with_time(field: str, ns: int) -> trace_pb2.Span:
    span = otlp_span("late")
    if field == "events[0].time_unix_nano":
        span.events.add(name="e", time_unix_nano=ns)
    else:
        setattr(span, field, ns)
    return span


TIME_FIELDS = ["start_time_unix_nano", "end_time_unix_nano", "events[0].time_unix_nano"]


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON], ids=["protobuf", "json"])
@pytest.mark.parametrize("ns", [LAST_STORABLE + 1, BEYOND_I64, 2**64 - 1], ids=["2^63-1", "2^63", "2^64-1"])
@pytest.mark.parametrize("field", TIME_FIELDS)
def test_otlp_http_time_beyond_cnosdb_is_400_naming_span_and_field(server, field: str, ns: int,
                                                                   content_type: str) -> None:
    span = _with_time(field, ns)
    request = otlp_request("late-svc", span)
    body = request.SerializeToString() if content_type == PROTOBUF else otlp_json(request)
    response = post(otlp_url(server), body, content_type)
    assert response.status_code == 400, response.content
    code, message = rpc_status(response)
    assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert field in message and span.span_id.hex() in message and str(ns) in message


def test_otlp_http_last_storable_time_is_written(server) -> None:
    span = otlp_span("last", start=time.time_ns())
    span.end_time_unix_nano = LAST_STORABLE
    span.events.add(name="e", time_unix_nano=LAST_STORABLE)
    assert post(otlp_url(server), otlp_request("last-svc", span).SerializeToString()).status_code == 200
    with server.channel() as channel:
        [found] = [s for c in v1_reader(channel).GetTrace(v1.GetTraceRequest(trace_id=span.trace_id))
                   for s in c.spans]
        assert found.logs[0].timestamp.ToNanoseconds() == LAST_STORABLE
        ids = trace_storage_grpc.TraceReaderStub(channel).FindTraceIDs(
            trace_storage_pb2.FindTraceIDsRequest(query=v2_query("last-svc")))
    assert [t.trace_id for t in ids.trace_ids] == [span.trace_id]


def _jaeger_span(seconds: int = 0, log_seconds: int | None = None, duration_seconds: int = 0, nanos: int = 0
                 ) -> model_pb2.Span:
    span = model_pb2.Span(trace_id=os.urandom(16), span_id=os.urandom(8), operation_name="late",
                          process=model_pb2.Process(service_name="late-jaeger"))
    span.start_time.FromNanoseconds(time.time_ns())
    if seconds:
        span.start_time.seconds, span.start_time.nanos = seconds, nanos
    span.duration.seconds = duration_seconds
    if log_seconds is not None:
        span.logs.add().timestamp.seconds = log_seconds
    return span


@pytest.mark.parametrize(("span", "field"), [
    (_jaeger_span(seconds=BEYOND_I64 // 10**9 + 1), "start_time_unix_nano"),
    (_jaeger_span(seconds=LAST_STORABLE // 10**9, nanos=LAST_STORABLE % 10**9 + 1), "start_time_unix_nano"),
    (_jaeger_span(seconds=10**15), "start_time_unix_nano"),
    (_jaeger_span(duration_seconds=BEYOND_I64 // 10**9), "end_time_unix_nano"),
    (_jaeger_span(log_seconds=10**12), "events[0].time_unix_nano"),
], ids=["start-2^63", "start-2^63-1", "start-beyond-2^64", "end", "log"])
@pytest.mark.parametrize("stream", [False, True], ids=["WriteSpan", "WriteSpanStream"])
def test_jaeger_v1_time_beyond_cnosdb_is_invalid_argument(server, span: model_pb2.Span, field: str,
                                                          stream: bool) -> None:
    with server.channel() as channel:
        if stream:
            writer = storage_v1_grpc.StreamingSpanWriterPluginStub(channel)
            error = grpc_error(lambda: writer.WriteSpanStream(iter([v1.WriteSpanRequest(span=span)])))
        else:
            writer = storage_v1_grpc.SpanWriterPluginStub(channel)
            error = grpc_error(lambda: writer.WriteSpan(v1.WriteSpanRequest(span=span)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert field in error.details() and span.span_id.hex() in error.details()


# --- OTLP/JSON bodies that are not an export request -----------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"resourceSpans":' * 100_000 + b"[]" + b"}" * 100_000],
                         ids=["arrays", "objects"])
def test_otlp_json_nested_100000_deep_is_400(server, body: bytes) -> None:
    response = post(otlp_url(server), body, JSON)
    assert response.status_code == 400
    assert rpc_status(response) == (3, "malformed OTLP application/json body: nested too deeply")


@pytest.mark.parametrize(("body", "got"), [(b"[]", "an array"), (b'"x"', "a string"), (b"1", "a number"),
                                           (b"null", "null"), (b"true", "a boolean")],
                         ids=["array", "string", "number", "null", "bool"])
def test_otlp_json_body_that_is_not_an_object_is_400(server, body: bytes, got: str) -> None:
    response = post(otlp_url(server), body, JSON)
    assert response.status_code == 400
    assert rpc_status(response) == (3, f"malformed OTLP application/json body: expected a JSON object, got {got}")


@pytest.mark.parametrize("payload", [{"resourceSpans": 5}, {"resourceSpans": [5]},
                                     {"resourceSpans": [{"scopeSpans": {"spans": []}}]},
                                     {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]},
                                     {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": {}}]}]}]}],
                         ids=["number", "number-item", "object-for-array", "id-not-hex", "object-for-string"])
def test_otlp_json_of_the_wrong_shape_is_400(server, payload: dict[str, Any]) -> None:
    response = post(otlp_url(server), json.dumps(payload).encode(), JSON)
    assert response.status_code == 400, response.content
    assert rpc_status(response)[0] == 3


# --- names with NUL and other control characters -------------------------------------------------

SERVICE = "svc\x00\x01\x1f\x7f\ttab"
OPERATION = "op\x00name\x1b[31m"
KEY_A, KEY_B = "\x00a", "\x00b"
LITERAL_ESCAPE = "path\\x00\\x5c\\"  # text that looks like the stored escapes


@pytest.fixture(scope="module")
def control_names(server: RunningServer) -> trace_pb2.Span:
    span = otlp_span(OPERATION, attributes={KEY_A: "first", KEY_B: "second\x00value", LITERAL_ESCAPE: "lit",
                                            "k\x01": "v\x02"})
    request = otlp_request(SERVICE, span, scope="scope\x00name")
    request.resource_spans[0].resource.attributes.add(key="host\x00name").value.string_value = "h\x00"
    response = post(otlp_url(server), request.SerializeToString())
    assert response.status_code == 200, response.content
    return span


def test_control_character_names_are_distinct_columns_without_nul(server, control_names) -> None:
    rows = server.run(server.server.client.sql(describe_table(server.server.tenancy.default.table),
                                               tenant=server.server.tenancy.default.tenant,
                                               database=server.server.tenancy.default.database))
    columns = {r["column_name"] for r in rows}
    assert not any(c in name for name in columns for c in CONTROLS if c != "\t")
    assert {span_rows.SPAN_ATTRIBUTES + "\\\\x00a", span_rows.SPAN_ATTRIBUTES + "\\\\x00b"} <= columns


def test_control_character_names_round_trip_through_v1(server, control_names) -> None:
    span = control_names
    with server.channel() as channel:
        [found] = [s for c in v1_reader(channel).GetTrace(v1.GetTraceRequest(trace_id=span.trace_id))
                   for s in c.spans]
        services = v1_reader(channel).GetServices(v1.GetServicesRequest()).services
        operations = v1_reader(channel).GetOperations(v1.GetOperationsRequest(service=SERVICE))
        by_tag = [s for c in v1_reader(channel).FindTraces(v1.FindTracesRequest(
            query=v1_query(SERVICE, OPERATION, {KEY_A: "first", LITERAL_ESCAPE: "lit"}))) for s in c.spans]
        by_control_value = [s for c in v1_reader(channel).FindTraces(v1.FindTracesRequest(
            query=v1_query(SERVICE, tags={"k\x01": "v\x02", "otel.scope.name": "scope\x00name"}))) for s in c.spans]
    assert found.process.service_name == SERVICE and found.operation_name == OPERATION
    tags = {t.key: t.v_str for t in found.tags}
    assert tags[KEY_A] == "first" and tags[KEY_B] == "second\x00value" and tags[LITERAL_ESCAPE] == "lit"
    assert tags["otel.scope.name"] == "scope\x00name"
    assert {t.key: t.v_str for t in found.process.tags} == {"host\x00name": "h\x00"}
    assert SERVICE in services
    assert list(operations.operationNames) == [OPERATION]
    assert [s.span_id for s in by_tag] == [span.span_id] == [s.span_id for s in by_control_value]


def test_control_character_names_round_trip_through_the_query_api(server, control_names) -> None:
    assert SERVICE in query(server, "/api/services").json()["data"]
    assert query(server, f"/api/services/{requests.utils.quote(SERVICE, safe='')}/operations").json()["data"] == [
        OPERATION]
    assert query(server, "/api/operations", service=SERVICE).json()["data"] == [
        {"name": OPERATION, "spanKind": "server"}]
    found = query(server, "/api/traces", service=SERVICE, operation=OPERATION, tag=f"{KEY_A}:first",
                  lookback="1h")
    assert found.status_code == 200, found.text
    assert [t["traceID"] for t in found.json()["data"]] == [control_names.trace_id.hex()]


NUL_NAMES = ["a\x00b", "\x00", "x\x01\x02\x7f"]


@pytest.mark.parametrize("name", NUL_NAMES, ids=["nul", "only-nul", "controls"])
def test_query_api_serves_names_with_control_characters(server, name: str) -> None:
    for path, params in [("/api/operations", {"service": name}),
                         (f"/api/services/{requests.utils.quote(name, safe='')}/operations", {}),
                         ("/api/traces", {"service": name}),
                         ("/api/traces", {"service": "s", "operation": name}),
                         ("/api/traces", {"service": "s", "tag": f"{name}:v"}),
                         ("/api/traces", {"service": "s", "tags": json.dumps({name: "v"})})]:
        response = query(server, path, **params)
        assert response.status_code == 200, (path, params, response.text)


def test_query_api_search_for_a_value_with_nul_is_400(server, control_names) -> None:
    response = query(server, "/api/traces", service=SERVICE, tag=f"{KEY_B}:second\x00value")
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert "NUL" in error["msg"] and "second" in error["msg"]


@pytest.mark.parametrize("name", NUL_NAMES, ids=["nul", "only-nul", "controls"])
def test_grpc_read_methods_serve_names_with_control_characters(server, name: str) -> None:
    with server.channel() as channel:
        r1, r2 = v1_reader(channel), trace_storage_grpc.TraceReaderStub(channel)
        r1.GetOperations(v1.GetOperationsRequest(service=name))
        r1.GetOperations(v1.GetOperationsRequest(service=name, span_kind="server"))
        list(r1.FindTraces(v1.FindTracesRequest(query=v1_query(name, name, {name: "v"}))))
        r1.FindTraceIDs(v1.FindTraceIDsRequest(query=v1_query(name, name, {name: "v"})))
        r2.GetOperations(trace_storage_pb2.GetOperationsRequest(service=name))
        list(r2.FindTraces(trace_storage_pb2.FindTracesRequest(query=v2_query(name, name, {name: "v"}))))
        r2.FindTraceIDs(trace_storage_pb2.FindTraceIDsRequest(query=v2_query(name, name, {name: "v"})))


def test_grpc_search_for_a_value_with_nul_is_invalid_argument(server, control_names) -> None:
    tags = {KEY_B: "second\x00value"}
    with server.channel() as channel:
        r1, r2 = v1_reader(channel), trace_storage_grpc.TraceReaderStub(channel)
        calls = [lambda: r1.FindTraces(v1.FindTracesRequest(query=v1_query(SERVICE, tags=tags))),
                 lambda: r1.FindTraceIDs(v1.FindTraceIDsRequest(query=v1_query(SERVICE, tags=tags))),
                 lambda: r2.FindTraces(trace_storage_pb2.FindTracesRequest(query=v2_query(SERVICE, attributes=tags))),
                 lambda: r2.FindTraceIDs(trace_storage_pb2.FindTraceIDsRequest(
                     query=v2_query(SERVICE, attributes=tags)))]
        for call in calls:
            error = grpc_error(call)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
            assert "NUL" in error.details()


# --- CnosDB refusing a write: the database is gone -----------------------------------------------


def test_write_to_a_database_cnosdb_no_longer_has_is_404(tmp_path: Path) -> None:
    with running_server(server_config(tmp_path)) as server:
        target = server.server.tenancy.default
        server.run(server.server.client.sql(f'DROP DATABASE "{target.database}"', tenant=target.tenant,
                                            database=target.database))
        response = post(otlp_url(server), otlp_request("svc", otlp_span()).SerializeToString())
        assert response.status_code == 404, response.content
        code, message = rpc_status(response)
        assert code == grpc.StatusCode.NOT_FOUND.value[0] and "Database not found" in message
        with server.channel() as channel:
            span = _jaeger_span()
            error = grpc_error(lambda: storage_v1_grpc.SpanWriterPluginStub(channel).WriteSpan(
                v1.WriteSpanRequest(span=span)))
        assert error.code() == grpc.StatusCode.NOT_FOUND and "Database not found" in error.details()


def test_unknown_db_header_on_cnosdb_path_is_4xx(server) -> None:
    response = post(otlp_url(server, "/api/v1/traces"), otlp_request("svc", otlp_span()).SerializeToString(),
                    db="no_such_database")
    assert 400 <= response.status_code < 500, response.content
    assert "no_such_database" in rpc_status(response)[1]
