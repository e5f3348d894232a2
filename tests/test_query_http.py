"""The Jaeger query HTTP API (`--query-http-addr`), as Grafana's Jaeger data source and the Jaeger UI call it.

Spans are written over OTLP/HTTP and read with `requests`; the JSON is compared with Jaeger v1.76's own
(`cmd/query/app/http_handler.go`, `internal/uimodel`): envelope `{data, total, limit, offset, errors}`,
lowercase value types, `CHILD_OF` references, microsecond times, processes `p1`, `p2`, ...
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from harness import RunningServer, running_server, server_config

from cnosdb_jaeger_storage.metrics import METRICS
from cnosdb_jaeger_storage.proto import trace_pb2, trace_service_pb2

MINUTE_NS = 60 * 10**9
NOT_FOUND_BODY = b'{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}\n'
# Whole microseconds, an hour ago: every time below is exact in the API's microseconds.
T0 = (time.time_ns() - 60 * MINUTE_NS) // 1000 * 1000


@dataclass
class Written:
    dispatch: bytes  # frontend GET /dispatch (50 ms, status 200) → customer, T0
    failed: bytes  # frontend GET /dispatch (2 ms, status 500, error), T0 - 20 min
    old: bytes  # frontend GET /config (500 ms), three days ago: outside the default 48 h lookback
    short_id: bytes  # a 64-bit trace ID (high half zero), as Jaeger clients still send
    spans: dict[str, trace_pb2.Span]


def _span(trace_id: bytes, name: str, kind: int, start: int, duration: int, parent: bytes = b"",
          attributes: dict[str, Any] | None = None) -> trace_pb2.Span:
    span = trace_pb2.Span(trace_id=trace_id, span_id=os.urandom(8), parent_span_id=parent, name=name, kind=kind,
                          start_time_unix_nano=start, end_time_unix_nano=start + duration, flags=1)
    for key, value in (attributes or {}).items():
        v = span.attributes.add(key=key).value
        if isinstance(value, bool):
            v.bool_value = value
        elif isinstance(value, int):
            v.int_value = value
        elif isinstance(value, float):
            v.double_value = value
        elif isinstance(value, bytes):
            v.bytes_value = value
        else:
            v.string_value = value
    return span


def _request(*groups: tuple[str, list[trace_pb2.Span]]) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    for service, spans in groups:
        rs = request.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        rs.resource.attributes.add(key="host.name").value.string_value = f"{service}-1"
        ss = rs.scope_spans.add()
        ss.spans.extend(spans)
    return request.SerializeToString()


def write(server: RunningServer, body: bytes, path: str = "/v1/traces", **headers: str) -> None:
    response = requests.post(server.url("otlp_http") + path, data=body,
                             headers={"Content-Type": "application/x-protobuf", **headers}, timeout=30)
    assert response.status_code == 200, response.content


SERVER, CLIENT = trace_pb2.Span.SPAN_KIND_SERVER, trace_pb2.Span.SPAN_KIND_CLIENT


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Written]]:
    with running_server(server_config(tmp_path_factory.mktemp("query_http"),
                                      query_http_addr="127.0.0.1:0")) as server:
        dispatch, failed, old = os.urandom(16), os.urandom(16), os.urandom(16)
        short_id = bytes(8) + os.urandom(8)
        root = _span(dispatch, "GET /dispatch", SERVER, T0, 50_000_000, attributes={
            "http.method": "GET", "http.status_code": 200, "ratio": 0.5, "cached": False, "big": 2**60,
            "blob": b"\x00\xff"})
        root.events.add(time_unix_nano=T0 + 1_000_000, name="lookup").attributes.add(
            key="attempt").value.int_value = 2
        call = _span(dispatch, "HTTP GET /customer", CLIENT, T0 + 2_000_000, 40_000_000, root.span_id)
        customer = _span(dispatch, "GET /customer", SERVER, T0 + 3_000_000, 30_000_000, call.span_id,
                         {"http.method": "GET", "http.status_code": 200})
        bad = _span(failed, "GET /dispatch", SERVER, T0 - 20 * MINUTE_NS, 2_000_000,
                    attributes={"http.method": "GET", "http.status_code": 500})
        bad.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        config = _span(old, "GET /config", SERVER, T0 - 3 * 24 * 60 * MINUTE_NS, 500_000_000)
        short = _span(short_id, "GET /short", SERVER, T0 - 5 * MINUTE_NS, 1_000)
        write(server, _request(("frontend", [root, call, bad, config, short]), ("customer", [customer])))
        yield server, Written(dispatch, failed, old, short_id,
                              {"root": root, "call": call, "customer": customer, "bad": bad, "short": short})


def get(server: RunningServer, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url("query_http") + path, params=params, timeout=30)


def ok(server: RunningServer, path: str, **params: Any) -> dict[str, Any]:
    response = get(server, path, **params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def trace_ids(body: dict[str, Any]) -> list[str]:
    return [trace["traceID"] for trace in body["data"]]


def bad_request(server: RunningServer, path: str, **params: Any) -> str:
    response = get(server, path, **params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["data"] is None and (body["total"], body["limit"], body["offset"]) == (0, 0, 0)
    [error] = body["errors"]
    assert error["code"] == 400
    return error["msg"]


# --- services and operations ---------------------------------------------------------------------------


def test_services(written) -> None:
    server, _ = written
    assert get(server, "/api/services").content == \
        b'{"data":["customer","frontend"],"total":2,"limit":0,"offset":0,"errors":null}'


def test_legacy_operations_are_unique_names_of_all_kinds(written) -> None:
    server, _ = written
    assert ok(server, "/api/services/frontend/operations") == {
        "data": ["GET /config", "GET /dispatch", "GET /short", "HTTP GET /customer"], "total": 4, "limit": 0,
        "offset": 0, "errors": None}
    # `null`, not `[]`, when there are none, as Jaeger's getUniqueOperationNames gives it.
    assert ok(server, "/api/services/nobody/operations")["data"] is None


@pytest.mark.parametrize(("span_kind", "expected"), [
    ("", [{"name": "GET /config", "spanKind": "server"}, {"name": "GET /dispatch", "spanKind": "server"},
          {"name": "GET /short", "spanKind": "server"}, {"name": "HTTP GET /customer", "spanKind": "client"}]),
    ("client", [{"name": "HTTP GET /customer", "spanKind": "client"}]),
    ("consumer", []),
], ids=["all", "client", "none"])
def test_operations_with_span_kind(written, span_kind: str, expected: list[dict[str, str]]) -> None:
    server, _ = written
    body = ok(server, "/api/operations", service="frontend", spanKind=span_kind)
    assert sorted(body["data"], key=lambda o: o["name"]) == expected
    assert body["total"] == len(expected)


def test_operations_without_service_is_400(written) -> None:
    server, _ = written
    assert bad_request(server, "/api/operations") == "parameter 'service' is required"
    assert bad_request(server, "/api/operations", spanKind="server") == "parameter 'service' is required"


# --- one trace ---------------------------------------------------------------------------------------


def _kv(key: str, type_: str, value: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "value": value}


def test_trace_by_id_has_jaegers_ui_shape(written) -> None:
    server, w = written
    root, call, customer = w.spans["root"], w.spans["call"], w.spans["customer"]
    body = ok(server, f"/api/traces/{w.dispatch.hex()}")
    assert {k: body[k] for k in ("total", "limit", "offset", "errors")} == {
        "total": 0, "limit": 0, "offset": 0, "errors": None}
    [trace] = body["data"]
    assert trace["traceID"] == w.dispatch.hex()
    assert trace["warnings"] is None
    assert sorted(trace["processes"]) == ["p1", "p2"]
    service_of = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    for process in trace["processes"].values():
        assert process["tags"] == [_kv("host.name", "string", process["serviceName"] + "-1")]
    spans = {span["spanID"]: span for span in trace["spans"]}
    assert sorted(spans) == sorted(s.span_id.hex() for s in (root, call, customer))
    for span in spans.values():
        span["service"] = service_of[span.pop("processID")]
    tid = w.dispatch.hex()
    assert spans[root.span_id.hex()] == {
        "traceID": tid, "spanID": root.span_id.hex(), "operationName": "GET /dispatch", "references": [],
        "startTime": T0 // 1000, "duration": 50_000, "flags": 1, "warnings": None, "service": "frontend",
        # Tags sorted by key, and the `event` log field first: jaeger-query's SortTagsAndLogFields adjuster.
        "tags": [_kv("big", "int64", str(2**60)), _kv("blob", "binary", base64.b64encode(b"\x00\xff").decode()),
                 _kv("cached", "bool", False), _kv("http.method", "string", "GET"),
                 _kv("http.status_code", "int64", 200), _kv("ratio", "float64", 0.5),
                 _kv("span.kind", "string", "server")],
        "logs": [{"timestamp": T0 // 1000 + 1000,
                  "fields": [_kv("event", "string", "lookup"), _kv("attempt", "int64", 2)]}]}
    assert spans[call.span_id.hex()] == {
        "traceID": tid, "spanID": call.span_id.hex(), "operationName": "HTTP GET /customer",
        "references": [{"refType": "CHILD_OF", "traceID": tid, "spanID": root.span_id.hex()}],
        "startTime": T0 // 1000 + 2000, "duration": 40_000, "flags": 1, "warnings": None, "service": "frontend",
        "tags": [_kv("span.kind", "string", "client")], "logs": []}
    assert spans[customer.span_id.hex()]["references"] == [
        {"refType": "CHILD_OF", "traceID": tid, "spanID": call.span_id.hex()}]
    assert spans[customer.span_id.hex()]["service"] == "customer"


def test_trace_with_error_status_has_error_tags(written) -> None:
    server, w = written
    [trace] = ok(server, f"/api/traces/{w.failed.hex()}")["data"]
    [span] = trace["spans"]
    assert {(kv["key"], kv["type"], kv["value"]) for kv in span["tags"]} >= {
        ("error", "bool", True), ("otel.status_code", "string", "ERROR"), ("http.status_code", "int64", 500)}


@pytest.mark.parametrize("form", ["short", "padded", "upper"])
def test_64_bit_trace_id_in_16_or_32_hex_digits(written, form: str) -> None:
    server, w = written
    low = w.short_id[8:].hex()
    text = {"short": low, "padded": "0" * 16 + low, "upper": low.upper()}[form]
    [trace] = ok(server, f"/api/traces/{text}")["data"]
    assert trace["traceID"] == low  # Jaeger's UI form: 16 digits when the high half is zero
    assert [(s["traceID"], s["operationName"]) for s in trace["spans"]] == [(low, "GET /short")]


@pytest.mark.parametrize("trace_id", ["0123456789abcdef", "0123456789abcdef0123456789abcdef"],
                         ids=["16-hex", "32-hex"])
def test_missing_trace_is_404_with_jaegers_exact_body(written, trace_id: str) -> None:
    server, _ = written
    response = get(server, f"/api/traces/{trace_id}")
    assert response.status_code == 404
    assert response.content == NOT_FOUND_BODY
    assert response.headers["content-type"] == "text/plain; charset=utf-8"  # Go's http.Error


@pytest.mark.parametrize("trace_id", ["xyz", "0123456789abcdef0123456789abcdef0", "12-34"])
def test_malformed_trace_id_is_400(written, trace_id: str) -> None:
    server, _ = written
    assert "cannot parse traceID" in bad_request(server, f"/api/traces/{trace_id}")


def test_trace_by_id_within_start_and_end(written) -> None:
    server, w = written
    inside = ok(server, f"/api/traces/{w.failed.hex()}", start=(T0 - 21 * MINUTE_NS) // 1000,
                end=(T0 - 19 * MINUTE_NS) // 1000)
    assert trace_ids(inside) == [w.failed.hex()]
    outside = get(server, f"/api/traces/{w.failed.hex()}", start=T0 // 1000, end=(T0 + MINUTE_NS) // 1000)
    assert (outside.status_code, outside.content) == (404, NOT_FOUND_BODY)


def test_several_trace_ids_report_the_missing_ones(written) -> None:
    server, w = written
    missing = "00000000000000000000000000abcdef"
    response = get(server, "/api/traces", traceID=[w.dispatch.hex(), missing, w.short_id[8:].hex()])
    body = response.json()
    assert response.status_code == 200
    assert sorted(trace_ids(body)) == sorted([w.dispatch.hex(), w.short_id[8:].hex()])
    assert (body["total"], body["limit"], body["offset"]) == (0, 0, 0)
    assert body["errors"] == [{"msg": "trace not found", "traceID": "0000000000abcdef"}]


# --- search ------------------------------------------------------------------------------------------

DAY_MIN = 24 * 60


def us(minutes_before: int) -> int:
    """The API's microseconds, `minutes_before` T0."""
    return (T0 - minutes_before * MINUTE_NS) // 1000


SEARCHES = [
    pytest.param({}, ["dispatch", "short", "failed"], id="service"),
    pytest.param({"operation": "GET /dispatch"}, ["dispatch", "failed"], id="operation"),
    pytest.param({"tag": "http.status_code:500"}, ["failed"], id="tag"),
    pytest.param({"tag": ["http.status_code:200", "http.method:GET"]}, ["dispatch"], id="two-tag-params"),
    pytest.param({"tag": "http.status_code:404"}, [], id="tag-no-match"),
    pytest.param({"tag": "error:true"}, ["failed"], id="error-tag"),
    pytest.param({"tag": "no.such.key:x"}, [], id="unknown-tag-key"),
    pytest.param({"tags": '{"http.status_code":"200"}'}, ["dispatch"], id="tags-json"),
    # Multi-key objects hold commas, on which CnosDB's own implementation splits and then panics.
    pytest.param({"tags": '{"http.status_code":"200","http.method":"GET","cached":"false"}'}, ["dispatch"],
                 id="tags-json-three-keys"),
    pytest.param({"tags": '{"http.status_code":"500","http.method":"GET"}'}, ["failed"], id="tags-json-two-keys"),
    pytest.param({"tags": '{"http.status_code":"200","http.method":"POST"}'}, [], id="tags-json-no-match"),
    pytest.param({"minDuration": "10ms"}, ["dispatch"], id="min-duration"),
    pytest.param({"minDuration": "1.5ms", "maxDuration": "0.01s"}, ["failed"], id="min-max-duration"),
    pytest.param({"maxDuration": "1500us"}, ["short"], id="max-duration-us"),
    pytest.param({"maxDuration": "1µs"}, ["short"], id="max-duration-micro-sign"),
    pytest.param({"minDuration": "1m"}, [], id="min-duration-minute"),
    pytest.param({"limit": "1"}, ["dispatch"], id="limit"),
    pytest.param({"tag": "http.method:GET", "limit": "1", "maxDuration": "10ms"}, ["failed"],
                 id="limit-with-filters"),
    pytest.param({"start": us(30), "end": us(4)}, ["short", "failed"], id="start-end"),
    pytest.param({"start": us(30), "end": us(10)}, ["failed"], id="start-end-narrow"),
    pytest.param({"start": us(4 * DAY_MIN)}, ["dispatch", "short", "failed", "old"], id="start-only"),
    pytest.param({"start": us(4 * DAY_MIN), "end": us(2 * DAY_MIN)}, ["old"], id="old-window"),
    # Three days old: beyond the default lookback of 48 hours; `lookback` is the UI's alone, not the API's.
    pytest.param({"operation": "GET /config"}, [], id="default-lookback"),
    pytest.param({"lookback": "custom", "operation": "GET /config"}, [], id="lookback-ignored"),
]


@pytest.mark.parametrize(("params", "expected"), SEARCHES)
def test_search(written, params: dict[str, Any], expected: list[str]) -> None:
    server, w = written
    body = ok(server, "/api/traces", service="frontend", **params)
    names = {getattr(w, name).hex(): name for name in ("dispatch", "failed", "old")}
    names[w.short_id[8:].hex()] = "short"
    assert [names[t] for t in trace_ids(body)] == expected  # newest trace first
    assert (body["total"], body["limit"], body["offset"], body["errors"]) == (0, 0, 0, None)


def test_search_returns_whole_traces(written) -> None:
    server, w = written
    body = ok(server, "/api/traces", service="customer")
    [trace] = body["data"]
    assert trace["traceID"] == w.dispatch.hex()
    assert len(trace["spans"]) == 3
    assert sorted(p["serviceName"] for p in trace["processes"].values()) == ["customer", "frontend"]


@pytest.mark.parametrize(("params", "message"), [
    ({}, "parameter 'service' is required"),
    ({"service": "frontend", "minDuration": "abc"}, "cannot parse minDuration 'abc' as a duration"),
    ({"service": "frontend", "maxDuration": "10"}, "cannot parse maxDuration '10' as a duration"),
    ({"service": "frontend", "minDuration": "2s", "maxDuration": "1s"},
     "'maxDuration' should be greater than 'minDuration'"),
    ({"service": "frontend", "tag": "novalue"}, "malformed 'tag' parameter, expecting key:value, got 'novalue'"),
    ({"service": "frontend", "tags": "{not json"},
     "malformed 'tags' parameter, expecting a JSON object, got '{not json'"),
    ({"service": "frontend", "tags": '["a"]'}, "malformed 'tags' parameter, expecting a JSON object"),
    ({"service": "frontend", "start": "yesterday"}, "cannot parse start 'yesterday' as an integer"),
    ({"service": "frontend", "limit": "ten"}, "cannot parse limit 'ten' as an integer"),
    ({"traceID": "nothex"}, "cannot parse traceID 'nothex'"),
    ({"service": "frontend", "limit": str(2**63)}, f"cannot parse limit '{2**63}' as an integer"),
    ({"service": "frontend", "end": str(-(2**63) - 1)}, f"cannot parse end '{-(2**63) - 1}' as an integer"),
], ids=["no-service", "bad-min-duration", "duration-without-unit", "max-below-min", "tag-without-colon",
        "tags-not-json", "tags-not-object", "bad-start", "bad-limit", "bad-trace-id", "limit-beyond-int64",
        "end-beyond-int64"])
def test_bad_search_parameters_are_400(written, params: dict[str, Any], message: str) -> None:
    server, _ = written
    assert bad_request(server, "/api/traces", **params) == message


# --- dependencies --------------------------------------------------------------------------------------


def test_dependencies(written) -> None:
    server, _ = written
    end_ms = (T0 + 10 * MINUTE_NS) // 10**6
    body = ok(server, "/api/dependencies", endTs=end_ms, lookback=30 * 60 * 1000)
    assert body == {"data": [{"parent": "frontend", "child": "customer", "callCount": 1}], "total": 0, "limit": 0,
                    "offset": 0, "errors": None}
    assert ok(server, "/api/dependencies", endTs=end_ms, lookback=30 * 60 * 1000, service="customer")["data"] == \
        body["data"]
    assert ok(server, "/api/dependencies", endTs=end_ms, lookback=30 * 60 * 1000, service="other")["data"] == []
    earlier = (T0 - 10 * MINUTE_NS) // 10**6
    assert ok(server, "/api/dependencies", endTs=earlier, lookback=30 * 60 * 1000)["data"] == []
    assert ok(server, "/api/dependencies")["data"] == body["data"]  # default: the last 24 hours
    assert "endTs" in bad_request(server, "/api/dependencies", endTs="yesterday")
    assert "lookback" in bad_request(server, "/api/dependencies", lookback=str(2**64))


# --- CnosDB's headers and Basic auth ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnosdb_style(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, bytes]]:
    """A server with Basic auth whose spans went to db `grafana_db`, table `grafana_spans` by CnosDB's headers."""
    with running_server(server_config(tmp_path_factory.mktemp("cnosdb_style"), query_http_addr="127.0.0.1:0",
                                      receiver_user="root", receiver_password="pw")) as server:
        server.run(server.server.client.sql("CREATE DATABASE grafana_db", tenant="cnosdb", database="public"))
        trace_id = os.urandom(16)
        auth = "Basic " + base64.b64encode(b"root:pw").decode()
        write(server, _request(("grafana-svc", [_span(trace_id, "grafana-op", SERVER, T0, 1000)])),
              "/api/v1/traces", tenant="cnosdb", db="grafana_db", table="grafana_spans", Authorization=auth)
        write(server, _request(("default-svc", [_span(os.urandom(16), "default-op", SERVER, T0, 1000)])),
              Authorization=auth)
        yield server, trace_id


AUTH = {"Authorization": "Basic " + base64.b64encode(b"root:pw").decode()}
GRAFANA = {"tenant": "cnosdb", "db": "grafana_db", "table": "grafana_spans", **AUTH}


@pytest.mark.parametrize(("headers", "services"), [
    (GRAFANA, ["grafana-svc"]),
    ({"db": "grafana_db", "table": "grafana_spans", **AUTH}, ["grafana-svc"]),
    (AUTH, ["default-svc"]),
    ({"table": "grafana_spans", **AUTH}, None),  # the table, in the default database: none there (Jaeger: null)
], ids=["tenant-db-table", "db-table", "none", "table-only"])
def test_cnosdb_headers_select_the_table(cnosdb_style, headers: dict[str, str], services: list[str] | None) -> None:
    server, _ = cnosdb_style
    response = requests.get(server.url("query_http") + "/api/services", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == services


def test_cnosdb_headers_read_traces(cnosdb_style) -> None:
    server, trace_id = cnosdb_style
    url = server.url("query_http")
    [trace] = requests.get(f"{url}/api/traces/{trace_id.hex()}", headers=GRAFANA, timeout=30).json()["data"]
    assert [s["operationName"] for s in trace["spans"]] == ["grafana-op"]
    found = requests.get(f"{url}/api/traces", params={"service": "grafana-svc", "start": T0 // 1000 - 1},
                         headers=GRAFANA, timeout=30).json()
    assert trace_ids(found) == [trace_id.hex()]
    assert requests.get(f"{url}/api/traces/{trace_id.hex()}", headers=AUTH, timeout=30).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Basic " + base64.b64encode(b"root:nope").decode(), "Basic"],
                         ids=["missing", "wrong-password", "empty"])
@pytest.mark.parametrize("path", ["/api/services", "/api/traces?service=x", "/api/dependencies",
                                  "/api/traces/0123456789abcdef"])
def test_query_api_requires_basic_auth_when_configured(cnosdb_style, authorization: str | None, path: str) -> None:
    server, _ = cnosdb_style
    headers = {k: v for k, v in GRAFANA.items() if k != "Authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = requests.get(server.url("query_http") + path, headers=headers, timeout=30)
    assert response.status_code == 401
    assert json.loads(response.content) == {"data": None, "total": 0, "limit": 0, "offset": 0,
                                            "errors": [{"code": 401, "msg": "invalid or missing Basic credentials"}]}


def test_dependencies_of_a_table_of_root_spans_only_are_empty(cnosdb_style) -> None:
    """Nothing has written a parent span ID there yet, so the table has no such column."""
    server, _ = cnosdb_style
    for headers in (AUTH, GRAFANA):
        response = requests.get(server.url("query_http") + "/api/dependencies", headers=headers, timeout=30)
        assert (response.status_code, response.json()["data"]) == (200, [])


def test_query_api_requests_are_counted(written) -> None:
    server, _ = written
    before = METRICS.requests.value(api="query_http.services", outcome="200")
    get(server, "/api/services")
    assert METRICS.requests.value(api="query_http.services", outcome="200") == before + 1
