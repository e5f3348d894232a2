"""Scenario 1: Jaeger 1.x (v1.76.0) ``jaeger-collector`` + ``jaeger-query`` over the storage API v1.

Every test runs against two collector set-ups, each with its own fresh backend:

* ``jaeger-grpc-streaming``: OpenTelemetry Python SDK -> ``jaeger_exporter.JaegerCollectorGrpcExporter``
  -> the collector's Jaeger-native gRPC receiver (``jaeger.api_v2.CollectorService/PostSpans``) ->
  ``--grpc-storage.server`` = our server with the streaming span writer offered (the default).
* ``otlp-unary``: OpenTelemetry Python SDK -> the collector's OTLP/gRPC receiver -> our server started
  with ``--v1-streaming-writer false``, so the collector writes with unary ``WriteSpan``.

OTLP into the collector with the streaming writer is not a set-up: jaeger-collector v1.76.0 writes
OTLP-received spans with the OTLP request's context, which its pooled streaming writer keeps using after
the request has finished, and loses spans (docs/e2e.md, "Scenario 1").

Everything is read back through jaeger-query's HTTP API, which reads through our server's storage API v1
reader.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import Backend, jaeger_binary, start_backend
from harness import (
    BACKEND,
    DB,
    FRONTEND,
    SERVICES,
    DataSet,
    Process,
    ProcessDied,
    free_port,
    http_get,
    http_ok,
    kv_map,
    send_dataset,
    trace_labels_of,
)
from jaeger_exporter import JaegerCollectorGrpcExporter

POLL_TIMEOUT = 60.0


@dataclass(frozen=True)
class Setup:
    id: str
    ingest: str  # "jaeger-grpc": PostSpans to the collector's gRPC port; "otlp": its OTLP/gRPC receiver
    v1_streaming_writer: bool  # what our server offers in PluginCapabilities
    transport: str  # the label our server counts the collector's writes under (spans_received_total)


SETUPS = (
    Setup("jaeger-grpc-streaming", "jaeger-grpc", True, "jaeger_v1_stream"),
    Setup("otlp-unary", "otlp", False, "jaeger_v1"),
)
V1_TRANSPORTS = ("jaeger_v1", "jaeger_v1_stream")


@pytest.fixture(scope="module", params=SETUPS, ids=lambda setup: setup.id)
def setup(request: pytest.FixtureRequest) -> Setup:
    return request.param


@pytest.fixture(scope="module")
def backend(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A fresh backend (empty database) per set-up; overrides conftest's ``backend``."""
    b = start_backend(tmp_path_factory.mktemp(f"backend-{setup.id}"), v1_streaming_writer=setup.v1_streaming_writer)
    yield b
    b.stop()


class JaegerV1:
    def __init__(self, query_url: str, collector_grpc_port: int, otlp_grpc_port: int, collector_admin_url: str,
                 processes: list[Process]):
        self.query_url = query_url
        self.collector_grpc_port = collector_grpc_port
        self.otlp_grpc_port = otlp_grpc_port
        self.collector_admin_url = collector_admin_url
        self.processes = processes

    def collector_write_stats(self) -> str:
        """The collector's own count of spans saved to storage (result ok/err), for failure messages."""
        try:
            text = http_get(self.collector_admin_url, "/metrics").body.decode()
        except OSError as exc:
            return f"<collector /metrics unavailable: {exc}>"
        return "\n".join(ln for ln in text.splitlines() if ln.startswith("jaeger_collector_spans_saved_by_svc"))


@pytest.fixture(scope="module")
def jaeger_v1(setup: Setup, backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JaegerV1]:
    logs = tmp_path_factory.mktemp(f"jaeger-v1-{setup.id}")
    storage_flags = [f"--grpc-storage.server={backend.grpc_addr}", "--grpc-storage.tls.enabled=false"]
    env = {"SPAN_STORAGE_TYPE": "grpc"}
    c_admin, c_grpc, c_http, otlp_grpc, otlp_http = (free_port() for _ in range(5))
    q_http, q_grpc, q_admin = (free_port() for _ in range(3))
    collector = Process("jaeger-collector", [
        jaeger_binary("collector"), *storage_flags,
        f"--admin.http.host-port=127.0.0.1:{c_admin}",
        f"--collector.grpc-server.host-port=127.0.0.1:{c_grpc}",
        f"--collector.http-server.host-port=127.0.0.1:{c_http}",
        "--collector.otlp.enabled=true",
        f"--collector.otlp.grpc.host-port=127.0.0.1:{otlp_grpc}",
        f"--collector.otlp.http.host-port=127.0.0.1:{otlp_http}",
        "--collector.zipkin.host-port=",
        "--log-level=debug",
    ], logs, env=env)
    query = Process("jaeger-query", [
        jaeger_binary("query"), *storage_flags,
        f"--admin.http.host-port=127.0.0.1:{q_admin}",
        f"--query.http-server.host-port=127.0.0.1:{q_http}",
        f"--query.grpc-server.host-port=127.0.0.1:{q_grpc}",
        "--log-level=debug",
    ], logs, env=env)
    procs = [collector, query]
    try:
        for p in procs:
            p.start()
        collector.wait_ready(lambda: http_ok(f"http://127.0.0.1:{c_admin}/"), timeout=60, what="admin health 200")
        query.wait_ready(lambda: http_ok(f"http://127.0.0.1:{q_admin}/"), timeout=60, what="admin health 200")
        query.wait_ready(lambda: http_ok(f"http://127.0.0.1:{q_http}/api/services"), timeout=60,
                         what="/api/services 200")
        yield JaegerV1(f"http://127.0.0.1:{q_http}", c_grpc, otlp_grpc, f"http://127.0.0.1:{c_admin}", procs)
    finally:
        for p in reversed(procs):
            p.stop()


@pytest.fixture(scope="module")
def data(setup: Setup, jaeger_v1: JaegerV1) -> DataSet:
    if setup.ingest == "jaeger-grpc":
        endpoint = f"127.0.0.1:{jaeger_v1.collector_grpc_port}"
        ds = send_dataset(exporter_factory=lambda: JaegerCollectorGrpcExporter(endpoint, timeout=10))
    else:
        ds = send_dataset(jaeger_v1.otlp_grpc_port)
    checkout = ds.traces["checkout"]

    def all_visible():
        for p in jaeger_v1.processes:
            p.check_alive()
        r = http_get(jaeger_v1.query_url, "/api/traces", {"service": FRONTEND, "limit": 100})
        n_front = len(r.json()["data"] or []) if r.status == 200 else -1
        t = http_get(jaeger_v1.query_url, f"/api/traces/{checkout}")
        n_spans = len(t.json()["data"][0]["spans"]) if t.status == 200 else -1
        return (n_front, n_spans) == (5, 5) or (False, n_front, n_spans)

    try:
        _poll(all_visible, "5 frontend traces and the 5-span checkout trace through jaeger-query")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\ncollector write counters:\n{jaeger_v1.collector_write_stats()}") from None
    return ds


def _poll(fn, what: str):
    deadline = time.monotonic() + POLL_TIMEOUT
    last = None
    while True:
        try:
            last = fn()
            if last is True:
                return True
        except ProcessDied:
            raise
        except Exception as exc:  # not there yet
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {POLL_TIMEOUT:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(1)


_SPANS_RECEIVED = re.compile(r'^cnosdb_jaeger_spans_received_total\{transport="([^"]*)"\} (\S+)$', re.MULTILINE)


def spans_received(admin_url: str) -> dict[str, float]:
    """Our server's ``cnosdb_jaeger_spans_received_total`` by transport, from its admin ``/metrics``."""
    r = http_get(admin_url, "/metrics")
    assert r.status == 200, (r.status, r.body[:500])
    return {transport: float(value) for transport, value in _SPANS_RECEIVED.findall(r.body.decode())}


def _search(jq: JaegerV1, **params) -> list[dict]:
    if "tags" in params and isinstance(params["tags"], dict):
        params["tags"] = json.dumps(params["tags"])
    r = http_get(jq.query_url, "/api/traces", params)
    assert r.status == 200, (params, r.status, r.body[:2000])
    body = r.json()
    assert not body.get("errors"), body["errors"]
    return body["data"] or []


# ---- services and operations ---------------------------------------------------------


def test_services(jaeger_v1: JaegerV1, data: DataSet):
    r = http_get(jaeger_v1.query_url, "/api/services")
    assert r.status == 200
    body = r.json()
    assert set(body["data"]) == set(SERVICES)
    assert body["total"] == len(SERVICES)


def test_legacy_operations_endpoint(jaeger_v1: JaegerV1, data: DataSet):
    r = http_get(jaeger_v1.query_url, f"/api/services/{FRONTEND}/operations")
    assert r.status == 200
    assert set(r.json()["data"]) == {"HTTP GET /checkout", "call backend", "HTTP GET /health", "HTTP GET /browse"}
    r = http_get(jaeger_v1.query_url, f"/api/services/{DB}/operations")
    assert r.json()["data"] == ["SELECT orders"]


def test_operations_with_span_kind(jaeger_v1: JaegerV1, data: DataSet):
    r = http_get(jaeger_v1.query_url, "/api/operations", {"service": BACKEND})
    assert r.status == 200
    ops = {(o["name"], o["spanKind"]) for o in r.json()["data"]}
    assert ops == {("POST /api/order", "server"), ("db.query", "client")}
    r = http_get(jaeger_v1.query_url, "/api/operations", {"service": BACKEND, "spanKind": "client"})
    assert {(o["name"], o["spanKind"]) for o in r.json()["data"]} == {("db.query", "client")}
    r = http_get(jaeger_v1.query_url, "/api/operations", {"service": FRONTEND, "spanKind": "server"})
    assert {o["name"] for o in r.json()["data"]} == {"HTTP GET /checkout", "HTTP GET /health", "HTTP GET /browse"}


# ---- search ------------------------------------------------------------------------


def test_search_by_service(jaeger_v1: JaegerV1, data: DataSet):
    assert trace_labels_of(data, _search(jaeger_v1, service=FRONTEND, limit=100)) == {
        "checkout", "health", "browse10", "browse20", "browse30"}
    assert trace_labels_of(data, _search(jaeger_v1, service=DB, limit=100)) == {"checkout"}
    assert _search(jaeger_v1, service="no-such-service", limit=100) == []


def test_search_by_operation(jaeger_v1: JaegerV1, data: DataSet):
    assert trace_labels_of(data, _search(jaeger_v1, service=FRONTEND, operation="HTTP GET /browse", limit=100)) == {
        "browse10", "browse20", "browse30"}
    assert trace_labels_of(data, _search(jaeger_v1, service=BACKEND, operation="db.query", limit=100)) == {"checkout"}


def test_search_returns_whole_traces(jaeger_v1: JaegerV1, data: DataSet):
    (trace,) = _search(jaeger_v1, service=DB, limit=100)
    assert len(trace["spans"]) == 5
    services = {trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
    assert services == set(SERVICES)


@pytest.mark.parametrize(
    ("service", "tags", "expected"),
    [
        (FRONTEND, {"user.tier": "gold"}, {"browse10", "browse30"}),  # string span tag
        (FRONTEND, {"http.status_code": "200"}, {"checkout", "health", "browse10", "browse20", "browse30"}),  # int
        (FRONTEND, {"user.vip": "true"}, {"checkout"}),  # bool span tag
        (FRONTEND, {"cart.ratio": "0.75"}, {"checkout"}),  # float span tag
        (FRONTEND, {"user.tier": "gold", "http.status_code": "200"}, {"browse10", "browse30"}),  # AND
        (FRONTEND, {"user.tier": "bronze"}, set()),
        (DB, {"error": "true"}, {"checkout"}),  # error flag from the OTLP status
        (DB, {"deployment.environment": "e2e"}, {"checkout"}),  # process (resource) tag
        (BACKEND, {"order.items": "3"}, {"checkout"}),  # log (event) field
    ],
)
def test_search_by_tags(jaeger_v1: JaegerV1, data: DataSet, service, tags, expected):
    assert trace_labels_of(data, _search(jaeger_v1, service=service, tags=tags, limit=100)) == expected


def test_search_by_tag_param(jaeger_v1: JaegerV1, data: DataSet):
    traces = _search(jaeger_v1, service=FRONTEND, tag="user.tier:silver", limit=100)
    assert trace_labels_of(data, traces) == {"browse20"}


def test_search_by_duration(jaeger_v1: JaegerV1, data: DataSet):
    got = _search(jaeger_v1, service=FRONTEND, operation="HTTP GET /browse", minDuration="15ms",
                  maxDuration="25ms", limit=100)
    assert trace_labels_of(data, got) == {"browse20"}
    assert trace_labels_of(data, _search(jaeger_v1, service=FRONTEND, minDuration="110ms", limit=100)) == {"checkout"}
    assert trace_labels_of(data, _search(jaeger_v1, service=FRONTEND, maxDuration="5ms", limit=100)) == {"health"}


def test_search_by_time_window(jaeger_v1: JaegerV1, data: DataSet):
    start_us = (data.base_ns + 250_000_000) // 1000
    end_us = (data.base_ns + 450_000_000) // 1000
    got = _search(jaeger_v1, service=FRONTEND, start=start_us, end=end_us, limit=100)
    assert trace_labels_of(data, got) == {"browse10", "browse20"}


def test_search_limit(jaeger_v1: JaegerV1, data: DataSet):
    got = _search(jaeger_v1, service=FRONTEND, limit=2)
    assert len(got) == 2
    assert len(trace_labels_of(data, got)) == 2
    assert len(_search(jaeger_v1, service=FRONTEND, limit=1)) == 1


# ---- trace by id ---------------------------------------------------------------------


def test_get_trace_structure(jaeger_v1: JaegerV1, data: DataSet):
    checkout = data.traces["checkout"]
    r = http_get(jaeger_v1.query_url, f"/api/traces/{checkout}")
    assert r.status == 200
    (trace,) = r.json()["data"]
    assert trace["traceID"].lstrip("0") == checkout.lstrip("0")
    by_id = {s["spanID"]: s for s in trace["spans"]}
    sent = {data.spans[k].span_id: data.spans[k] for k in ("checkout", "call_backend", "order", "db_query", "select")}
    assert set(by_id) == set(sent)
    for span_id, want in sent.items():
        got = by_id[span_id]
        assert got["operationName"] == want.name
        assert trace["processes"][got["processID"]]["serviceName"] == want.service
        assert got["startTime"] == want.start_us
        assert got["duration"] == want.duration_us
        parents = [ref for ref in got["references"] if ref["refType"] == "CHILD_OF"]
        if want.parent_span_id is None:
            assert parents == []
        else:
            assert [(p["spanID"], p["traceID"].lstrip("0")) for p in parents] == [
                (want.parent_span_id, checkout.lstrip("0"))]
        assert kv_map(got).get("span.kind") == ("string", want.kind)


def test_get_trace_attribute_types(jaeger_v1: JaegerV1, data: DataSet):
    (trace,) = http_get(jaeger_v1.query_url, f"/api/traces/{data.traces['checkout']}").json()["data"]
    spans = {s["spanID"]: s for s in trace["spans"]}
    root = kv_map(spans[data.spans["checkout"].span_id])
    assert root["http.method"] == ("string", "GET")
    assert root["http.status_code"] == ("int64", 200)
    assert root["cart.ratio"] == ("float64", 0.75)
    assert root["user.vip"] == ("bool", True)
    assert root["cart.items"][0] == "string" and json.loads(root["cart.items"][1]) == ["apple", "pear"]
    assert root["otel.scope.name"] == ("string", "e2e.scope")
    assert root["otel.scope.version"] == ("string", "1.2.3")

    process = kv_map(trace["processes"][spans[data.spans["checkout"].span_id]["processID"]])
    assert process["deployment.environment"] == ("string", "e2e")
    assert process["host.cores"] == ("int64", 4)


def test_get_trace_events_and_errors(jaeger_v1: JaegerV1, data: DataSet):
    (trace,) = http_get(jaeger_v1.query_url, f"/api/traces/{data.traces['checkout']}").json()["data"]
    spans = {s["spanID"]: s for s in trace["spans"]}

    order = spans[data.spans["order"].span_id]
    assert len(order["logs"]) == 1
    log = order["logs"][0]
    assert log["timestamp"] == (data.base_ns + 20_000_000) // 1000
    fields = kv_map(log)
    assert fields["event"] == ("string", "order.validated")
    assert fields["order.items"] == ("int64", 3)
    assert fields["order.total"] == ("float64", 42.5)

    select = spans[data.spans["select"].span_id]
    tags = kv_map(select)
    assert tags["error"] == ("bool", True)
    assert tags["otel.status_code"] == ("string", "ERROR")
    assert tags["otel.status_description"] == ("string", "disk on fire")
    assert tags["db.rows"] == ("int64", 0)
    (exc_log,) = select["logs"]
    exc = kv_map(exc_log)
    assert exc["event"] == ("string", "exception")
    assert exc["exception.type"] == ("string", "ValueError")
    assert exc["exception.message"] == ("string", "disk on fire")
    # no error on the healthy spans
    assert "error" not in kv_map(spans[data.spans["order"].span_id])


def test_get_trace_links_become_follows_from(jaeger_v1: JaegerV1, data: DataSet):
    (trace,) = http_get(jaeger_v1.query_url, f"/api/traces/{data.traces['browse30']}").json()["data"]
    (span,) = trace["spans"]
    refs = [(r["refType"], r["traceID"].lstrip("0"), r["spanID"]) for r in span["references"]]
    assert refs == [("FOLLOWS_FROM", data.traces["checkout"].lstrip("0"), data.spans["checkout"].span_id)]


def test_get_unknown_trace_is_404(jaeger_v1: JaegerV1, data: DataSet):
    r = http_get(jaeger_v1.query_url, "/api/traces/0123456789abcdef0123456789abcdef")
    assert r.status == 404, r.body[:500]
    assert "trace not found" in r.body.decode()


def test_multi_get_by_trace_ids(jaeger_v1: JaegerV1, data: DataSet):
    params = [("traceID", data.traces["health"]), ("traceID", data.traces["browse20"])]
    r = http_get(jaeger_v1.query_url, "/api/traces", params)
    assert r.status == 200, r.body[:1000]
    assert trace_labels_of(data, r.json()["data"]) == {"health", "browse20"}


# ---- dependencies ---------------------------------------------------------------------


def test_dependencies(jaeger_v1: JaegerV1, data: DataSet):
    end_ms = time.time_ns() // 1_000_000 + 60_000
    r = http_get(jaeger_v1.query_url, "/api/dependencies", {"endTs": end_ms, "lookback": 3_600_000})
    assert r.status == 200, r.body[:1000]
    edges = {(d["parent"], d["child"]): d["callCount"] for d in r.json()["data"]}
    assert edges == {(FRONTEND, BACKEND): 1, (BACKEND, DB): 1}


def test_dependencies_outside_window_are_empty(jaeger_v1: JaegerV1, data: DataSet):
    end_ms = data.base_ns // 1_000_000 - 3_600_000  # an hour before the first span
    r = http_get(jaeger_v1.query_url, "/api/dependencies", {"endTs": end_ms, "lookback": 600_000})
    assert r.status == 200
    assert (r.json()["data"] or []) == []


def test_backend_admin_endpoints(backend: Backend, data: DataSet):
    if backend.admin_url is None:
        pytest.skip("only our server has the admin endpoints")
    assert http_get(backend.admin_url, "/healthz").status == 200
    r = http_get(backend.admin_url, "/metrics")
    assert r.status == 200
    assert r.body.strip(), "empty /metrics"


def test_collector_used_the_expected_v1_writer(setup: Setup, backend: Backend, jaeger_v1: JaegerV1,
                                               data: DataSet):
    """The streaming writer when our server offers it, unary WriteSpan when ``--v1-streaming-writer false``."""
    if backend.admin_url is None:
        pytest.skip("only our server counts received spans by transport")
    received = spans_received(backend.admin_url)
    by_v1 = {t: received.get(t, 0.0) for t in V1_TRANSPORTS}
    # Every one of the 9 spans went through the expected writer, and none through the other one.
    assert by_v1[setup.transport] >= len(data.spans), received
    assert all(n == 0 for t, n in by_v1.items() if t != setup.transport), received
    # ... and the collector saw no failed write.
    failed = [ln for ln in jaeger_v1.collector_write_stats().splitlines()
              if 'result="err"' in ln and float(ln.rsplit(" ", 1)[1]) != 0]
    assert failed == [], failed
