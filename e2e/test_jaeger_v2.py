"""Scenario 2 and 3: Jaeger v2 (v2.13.0, ``cmd/jaeger`` of module v1.76.0) over the storage API v2.

Scenario 2: spans go through the OpenTelemetry Python SDK -> Jaeger's OTLP receiver ->
``jaeger_storage_exporter`` -> our server's OTLP TraceService (the grpc backend's ``writer``);
they are read back through Jaeger's HTTP API (``/api/...``), its api_v3 HTTP gateway
(``/api/v3/...``) and its api_v3 gRPC QueryService, all of which read through our server's
``jaeger.storage.v2.TraceReader`` / ``DependencyReader``.

Scenario 3: Jaeger's own v2 storage integration suite (``TestGRPCStorage`` of
``cmd/jaeger/internal/integration``, pre-compiled by ``make -C e2e all``) against our server.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pbwire
import pytest
from conftest import E2E_BACKEND, Backend, jaeger_binary, start_backend
from harness import (
    BACKEND,
    DB,
    E2E_DIR,
    FRONTEND,
    GRPC_OPTIONS,
    MS,
    SERVICES,
    DataSet,
    Process,
    default_jaeger_bin_dir,
    free_port,
    http_get,
    http_ok,
    kv_map,
    port_is_free,
    send_dataset,
    trace_labels_of,
)
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

POLL_TIMEOUT = 60.0
UNKNOWN_TRACE = "0123456789abcdef0123456789abcdef"


def render_config(dest: Path, **values: object) -> Path:
    template = string.Template((E2E_DIR / "jaeger-v2.yaml").read_text())
    dest.write_text(template.substitute({k: str(v) for k, v in values.items()}))
    return dest


class JaegerV2:
    def __init__(self, proc: Process, query_http: int, query_grpc: int, otlp_grpc: int):
        self.proc = proc
        self.query_url = f"http://127.0.0.1:{query_http}"
        self.query_grpc = f"127.0.0.1:{query_grpc}"
        self.otlp_grpc_port = otlp_grpc


@pytest.fixture(scope="module")
def jaeger_v2(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JaegerV2]:
    workdir = tmp_path_factory.mktemp("jaeger-v2")
    ports = {k: free_port() for k in ("otlp_grpc_port", "otlp_http_port", "query_http_port",
                                      "query_grpc_port", "health_port", "metrics_port")}
    config = render_config(workdir / "jaeger-v2.yaml", storage_endpoint=backend.grpc_addr,
                           writer_endpoint=backend.grpc_addr, log_level="debug", **ports)
    proc = Process("jaeger-v2", [jaeger_binary("jaeger"), "--config", config], workdir,
                   env={"OTEL_TRACES_SAMPLER": "always_off"}).start()
    try:
        proc.wait_ready(lambda: http_ok(f"http://127.0.0.1:{ports['health_port']}/status"), timeout=60,
                        what="healthcheckv2 /status 200")
        proc.wait_ready(lambda: http_ok(f"http://127.0.0.1:{ports['query_http_port']}/api/services"),
                        timeout=60, what="/api/services 200")
        yield JaegerV2(proc, ports["query_http_port"], ports["query_grpc_port"], ports["otlp_grpc_port"])
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def data(jaeger_v2: JaegerV2) -> DataSet:
    ds = send_dataset(jaeger_v2.otlp_grpc_port)
    checkout = ds.traces["checkout"]
    deadline = time.monotonic() + POLL_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        jaeger_v2.proc.check_alive()
        try:
            r = http_get(jaeger_v2.query_url, "/api/traces", {"service": FRONTEND, "limit": 100})
            n_front = len(r.json()["data"] or []) if r.status == 200 else (r.status, r.body[:300])
            t = http_get(jaeger_v2.query_url, f"/api/traces/{checkout}")
            n_spans = len(t.json()["data"][0]["spans"]) if t.status == 200 else (t.status, t.body[:300])
            last = (n_front, n_spans)
            if last == (5, 5):
                return ds
        except Exception as exc:  # not there yet
            last = exc
        time.sleep(1)
    raise AssertionError(f"timed out after {POLL_TIMEOUT:.0f}s waiting for the spans to be readable "
                         f"through Jaeger v2 (frontend traces, checkout spans): {last!r}")


def _search(jq: JaegerV2, **params) -> list[dict]:
    if isinstance(params.get("tags"), dict):
        params["tags"] = json.dumps(params["tags"])
    r = http_get(jq.query_url, "/api/traces", params)
    assert r.status == 200, (params, r.status, r.body[:2000])
    body = r.json()
    assert not body.get("errors"), body["errors"]
    return body["data"] or []


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- Jaeger HTTP API (/api) -----------------------------------------------------------


def test_services(jaeger_v2: JaegerV2, data: DataSet):
    r = http_get(jaeger_v2.query_url, "/api/services")
    assert r.status == 200
    assert set(r.json()["data"]) == set(SERVICES)


def test_operations(jaeger_v2: JaegerV2, data: DataSet):
    r = http_get(jaeger_v2.query_url, "/api/operations", {"service": BACKEND})
    assert r.status == 200
    assert {(o["name"], o["spanKind"]) for o in r.json()["data"]} == {
        ("POST /api/order", "server"), ("db.query", "client")}
    r = http_get(jaeger_v2.query_url, "/api/operations", {"service": FRONTEND, "spanKind": "client"})
    assert {(o["name"], o["spanKind"]) for o in r.json()["data"]} == {("call backend", "client")}
    r = http_get(jaeger_v2.query_url, f"/api/services/{FRONTEND}/operations")
    assert set(r.json()["data"]) == {"HTTP GET /checkout", "call backend", "HTTP GET /health", "HTTP GET /browse"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": FRONTEND}, {"checkout", "health", "browse10", "browse20", "browse30"}),
        ({"service": DB}, {"checkout"}),
        ({"service": FRONTEND, "operation": "HTTP GET /browse"}, {"browse10", "browse20", "browse30"}),
        ({"service": FRONTEND, "tags": {"user.tier": "gold"}}, {"browse10", "browse30"}),
        ({"service": FRONTEND, "tags": {"http.status_code": "200", "user.tier": "silver"}}, {"browse20"}),
        ({"service": FRONTEND, "tags": {"user.vip": "true"}}, {"checkout"}),
        ({"service": DB, "tags": {"error": "true"}}, {"checkout"}),
        ({"service": DB, "tags": {"deployment.environment": "e2e"}}, {"checkout"}),
        ({"service": BACKEND, "tags": {"order.items": "3"}}, {"checkout"}),
        ({"service": FRONTEND, "tags": {"user.tier": "bronze"}}, set()),
        ({"service": FRONTEND, "operation": "HTTP GET /browse", "minDuration": "15ms", "maxDuration": "25ms"},
         {"browse20"}),
        ({"service": FRONTEND, "minDuration": "110ms"}, {"checkout"}),
    ],
    ids=lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else None,
)
def test_search(jaeger_v2: JaegerV2, data: DataSet, params, expected):
    assert trace_labels_of(data, _search(jaeger_v2, limit=100, **params)) == expected


def test_search_time_window_and_limit(jaeger_v2: JaegerV2, data: DataSet):
    got = _search(jaeger_v2, service=FRONTEND, start=(data.base_ns + 250 * MS) // 1000,
                  end=(data.base_ns + 450 * MS) // 1000, limit=100)
    assert trace_labels_of(data, got) == {"browse10", "browse20"}
    got = _search(jaeger_v2, service=FRONTEND, limit=2)
    assert len(got) == 2 and len(trace_labels_of(data, got)) == 2


def test_get_trace(jaeger_v2: JaegerV2, data: DataSet):
    checkout = data.traces["checkout"]
    r = http_get(jaeger_v2.query_url, f"/api/traces/{checkout}")
    assert r.status == 200
    (trace,) = r.json()["data"]
    spans = {s["spanID"]: s for s in trace["spans"]}
    labels = ("checkout", "call_backend", "order", "db_query", "select")
    assert set(spans) == {data.spans[k].span_id for k in labels}
    for k in labels:
        want, got = data.spans[k], spans[data.spans[k].span_id]
        assert got["operationName"] == want.name
        assert trace["processes"][got["processID"]]["serviceName"] == want.service
        assert (got["startTime"], got["duration"]) == (want.start_us, want.duration_us)
        parents = [r["spanID"] for r in got["references"] if r["refType"] == "CHILD_OF"]
        assert parents == ([want.parent_span_id] if want.parent_span_id else [])
    root = kv_map(spans[data.spans["checkout"].span_id])
    assert root["http.status_code"] == ("int64", 200)
    assert root["cart.ratio"] == ("float64", 0.75)
    assert root["user.vip"] == ("bool", True)
    assert root["http.method"] == ("string", "GET")
    select = kv_map(spans[data.spans["select"].span_id])
    assert select["error"] == ("bool", True)
    order_log = kv_map(spans[data.spans["order"].span_id]["logs"][0])
    assert order_log["event"] == ("string", "order.validated")
    assert order_log["order.items"] == ("int64", 3)


def test_get_unknown_trace_is_404(jaeger_v2: JaegerV2, data: DataSet):
    r = http_get(jaeger_v2.query_url, f"/api/traces/{UNKNOWN_TRACE}")
    assert r.status == 404, r.body[:500]


def test_dependencies(jaeger_v2: JaegerV2, data: DataSet):
    end_ms = time.time_ns() // 1_000_000 + 60_000
    r = http_get(jaeger_v2.query_url, "/api/dependencies", {"endTs": end_ms, "lookback": 3_600_000})
    assert r.status == 200, r.body[:1000]
    edges = {(d["parent"], d["child"]): d["callCount"] for d in r.json()["data"]}
    assert edges == {(FRONTEND, BACKEND): 1, (BACKEND, DB): 1}


# ---- api_v3 over HTTP (/api/v3, OTLP JSON) ------------------------------------------------


def _otlp_spans(resource_spans: list[dict]) -> dict[str, tuple[dict, dict, dict]]:
    """span id (hex) -> (resource, scope, span) from OTLP JSON."""
    out = {}
    for rs in resource_spans:
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                out[span["spanId"].lower()] = (rs.get("resource", {}), ss.get("scope", {}), span)
    return out


def _otlp_attrs(obj: dict) -> dict[str, dict]:
    return {a["key"]: a["value"] for a in obj.get("attributes", [])}


def _expected_array_json() -> dict:
    """A string-array attribute must come back from the v2 API as an OTLP arrayValue.

    Jaeger's own remote-storage v1.76.0 keeps spans in its v1 memory store, which turns
    arrays into JSON strings; that is accepted only for the development backend.
    """
    if E2E_BACKEND == "jaeger-remote-storage":
        return {"stringValue": '["apple","pear"]'}
    return {"arrayValue": {"values": [{"stringValue": "apple"}, {"stringValue": "pear"}]}}


def test_api_v3_http_services_and_operations(jaeger_v2: JaegerV2, data: DataSet):
    r = http_get(jaeger_v2.query_url, "/api/v3/services")
    assert r.status == 200, r.body[:500]
    assert set(r.json()["services"]) == set(SERVICES)
    r = http_get(jaeger_v2.query_url, "/api/v3/operations", {"service": DB})
    assert r.status == 200, r.body[:500]
    ops = [(o["name"], o.get("spanKind", "")) for o in r.json()["operations"]]
    assert ops == [("SELECT orders", "server")]


def test_api_v3_http_get_trace_keeps_otlp_types(jaeger_v2: JaegerV2, data: DataSet):
    r = http_get(jaeger_v2.query_url, f"/api/v3/traces/{data.traces['checkout']}")
    assert r.status == 200, r.body[:500]
    spans = _otlp_spans(r.json()["result"]["resourceSpans"])
    assert set(spans) == {data.spans[k].span_id for k in ("checkout", "call_backend", "order", "db_query",
                                                           "select")}
    resource, scope, root = spans[data.spans["checkout"].span_id]
    res = _otlp_attrs(resource)
    assert res["service.name"] == {"stringValue": FRONTEND}
    assert res["host.cores"] == {"intValue": "4"}
    assert scope.get("name") == "e2e.scope" and scope.get("version") == "1.2.3"
    attrs = _otlp_attrs(root)
    assert attrs["http.method"] == {"stringValue": "GET"}
    assert attrs["http.status_code"] == {"intValue": "200"}
    assert attrs["cart.ratio"] == {"doubleValue": 0.75}
    assert attrs["user.vip"] == {"boolValue": True}
    assert attrs["cart.items"] == _expected_array_json()
    assert root["kind"] in (2, "SPAN_KIND_SERVER")
    assert root["startTimeUnixNano"] == str(data.spans["checkout"].start_ns)
    assert root["endTimeUnixNano"] == str(data.spans["checkout"].end_ns)
    assert not root.get("parentSpanId")

    _, _, order = spans[data.spans["order"].span_id]
    assert order["parentSpanId"].lower() == data.spans["call_backend"].span_id
    (event,) = order["events"]
    assert event["name"] == "order.validated"
    assert event["timeUnixNano"] == str(data.base_ns + 20 * MS)
    assert _otlp_attrs(event) == {"order.items": {"intValue": "3"}, "order.total": {"doubleValue": 42.5}}

    _, _, select = spans[data.spans["select"].span_id]
    assert select["status"].get("code") in (2, "STATUS_CODE_ERROR")
    assert select["status"].get("message") == "disk on fire"
    assert [e["name"] for e in select["events"]] == ["exception"]


def test_api_v3_http_links(jaeger_v2: JaegerV2, data: DataSet):
    r = http_get(jaeger_v2.query_url, f"/api/v3/traces/{data.traces['browse30']}")
    assert r.status == 200, r.body[:500]
    ((_, _, span),) = _otlp_spans(r.json()["result"]["resourceSpans"]).values()
    (link,) = span["links"]
    assert link["traceId"].lower() == data.traces["checkout"]
    assert link["spanId"].lower() == data.spans["checkout"].span_id
    if E2E_BACKEND != "jaeger-remote-storage":  # Jaeger's v1 memory store drops link attributes
        assert _otlp_attrs(link).get("link.reason") == {"stringValue": "follow-up"}


def test_api_v3_http_find_traces(jaeger_v2: JaegerV2, data: DataSet):
    params = {
        "query.service_name": FRONTEND,
        "query.operation_name": "HTTP GET /browse",
        "query.start_time_min": _rfc3339(data.base_ns - 60_000 * MS),
        "query.start_time_max": _rfc3339(data.base_ns + 60_000 * MS),
        "query.duration_min": "15ms",
        "query.num_traces": "100",
    }
    r = http_get(jaeger_v2.query_url, "/api/v3/traces", params)
    assert r.status == 200, r.body[:500]
    spans = _otlp_spans(r.json()["result"]["resourceSpans"])
    assert {s["traceId"].lower() for _, _, s in spans.values()} == {data.traces["browse20"],
                                                                     data.traces["browse30"]}


def test_api_v3_http_unknown_trace_is_404(jaeger_v2: JaegerV2, data: DataSet):
    r = http_get(jaeger_v2.query_url, f"/api/v3/traces/{UNKNOWN_TRACE}")
    assert r.status == 404, r.body[:500]


# ---- api_v3 over gRPC (jaeger.api_v3.QueryService, hand-built messages) ------------------------

_QS = "/jaeger.api_v3.QueryService/"


def _unary(addr: str, method: str, request: bytes) -> bytes:
    with grpc.insecure_channel(addr, options=GRPC_OPTIONS) as ch:
        call = ch.unary_unary(_QS + method, request_serializer=None, response_deserializer=None)
        return call(request, timeout=15)


def _stream(addr: str, method: str, request: bytes) -> list[TracesData]:
    with grpc.insecure_channel(addr, options=GRPC_OPTIONS) as ch:
        call = ch.unary_stream(_QS + method, request_serializer=None,
                               response_deserializer=TracesData.FromString)
        return list(call(request, timeout=30))


def _span_index(chunks: list[TracesData]):
    out = {}
    for td in chunks:
        for rs in td.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    out[span.span_id.hex()] = (rs.resource, ss.scope, span)
    return out


def test_api_v3_grpc_services_and_operations(jaeger_v2: JaegerV2, data: DataSet):
    services = pbwire.parse_services(_unary(jaeger_v2.query_grpc, "GetServices", b""))
    assert set(services) == set(SERVICES)
    ops = pbwire.parse_operations(_unary(jaeger_v2.query_grpc, "GetOperations",
                                         pbwire.get_operations_request(BACKEND)))
    assert set(ops) == {("POST /api/order", "server"), ("db.query", "client")}
    ops = pbwire.parse_operations(_unary(jaeger_v2.query_grpc, "GetOperations",
                                         pbwire.get_operations_request(BACKEND, "server")))
    assert ops == [("POST /api/order", "server")]


def test_api_v3_grpc_get_trace(jaeger_v2: JaegerV2, data: DataSet):
    chunks = _stream(jaeger_v2.query_grpc, "GetTrace", pbwire.get_trace_request(data.traces["checkout"]))
    spans = _span_index(chunks)
    assert set(spans) == {data.spans[k].span_id for k in ("checkout", "call_backend", "order", "db_query",
                                                           "select")}
    for _, _, span in spans.values():
        assert span.trace_id.hex() == data.traces["checkout"]
    resource, scope, root = spans[data.spans["checkout"].span_id]
    attrs = {kv.key: kv.value for kv in root.attributes}
    assert attrs["http.status_code"].int_value == 200
    assert attrs["cart.ratio"].double_value == 0.75
    assert attrs["user.vip"].HasField("bool_value") and attrs["user.vip"].bool_value is True
    if E2E_BACKEND == "jaeger-remote-storage":  # see _expected_array_json
        assert attrs["cart.items"].string_value == '["apple","pear"]'
    else:
        assert [v.string_value for v in attrs["cart.items"].array_value.values] == ["apple", "pear"]
    assert root.start_time_unix_nano == data.spans["checkout"].start_ns
    assert root.end_time_unix_nano == data.spans["checkout"].end_ns
    assert (scope.name, scope.version) == ("e2e.scope", "1.2.3")
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == FRONTEND
    _, _, select = spans[data.spans["select"].span_id]
    assert select.parent_span_id.hex() == data.spans["db_query"].span_id
    assert select.status.code == 2  # STATUS_CODE_ERROR
    assert select.kind == 2  # SPAN_KIND_SERVER


def test_api_v3_grpc_get_unknown_trace_is_empty(jaeger_v2: JaegerV2, data: DataSet):
    assert _stream(jaeger_v2.query_grpc, "GetTrace", pbwire.get_trace_request(UNKNOWN_TRACE)) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"service": FRONTEND}, {"checkout", "health", "browse10", "browse20", "browse30"}),
        ({"service": FRONTEND, "attributes": {"user.tier": "gold"}}, {"browse10", "browse30"}),
        ({"service": BACKEND, "operation": "db.query"}, {"checkout"}),
        ({"service": FRONTEND, "duration_min_ns": 15 * MS, "duration_max_ns": 25 * MS}, {"browse20"}),
    ],
    ids=["service", "attributes", "operation", "duration"],
)
def test_api_v3_grpc_find_traces(jaeger_v2: JaegerV2, data: DataSet, kwargs, expected):
    req = pbwire.find_traces_request(start_min_ns=data.base_ns - 60_000 * MS,
                                     start_max_ns=data.base_ns + 60_000 * MS, search_depth=100, **kwargs)
    chunks = _stream(jaeger_v2.query_grpc, "FindTraces", req)
    ids = {span.trace_id.hex() for _, _, span in _span_index(chunks).values()}
    assert data.trace_labels(list(ids)) == expected


# ---- scenario 3: Jaeger's own storage integration suite ------------------------------------

# TestGRPCStorage dials these fixed ports (Jaeger's defaults, hard-coded in the suite):
# OTLP gRPC writer 4317, api_v3 reader 16685, health check 13133, metrics scrape 8888.
SUITE_FIXED_PORTS = {"otlp_grpc_port": 4317, "query_grpc_port": 16685, "health_port": 13133,
                     "metrics_port": 8888}
SUITE_TIMEOUT_S = 1500
PORTS_GRACE_S = 20


def test_jaeger_storage_integration_suite(tmp_path: Path):
    """Run Jaeger v2.13.0's ``TestGRPCStorage`` (RunSpanStoreTests) with CUSTOM_STORAGE=true.

    The pre-compiled test binary expects to run inside the Jaeger source tree: its working
    directory is ``cmd/jaeger/internal/integration``, it starts ``../../../../cmd/jaeger/jaeger``
    with ``--config ../../config-remote-storage.yaml`` and writes ``../../../../.metrics``.
    We lay out exactly that skeleton in a temporary directory, with the cached ``jaeger``
    binary and our own config (rendered from e2e/jaeger-v2.yaml), so nothing else is needed.
    """
    suite = default_jaeger_bin_dir() / "integration.test"
    if not suite.is_file():
        pytest.fail(f"{suite} is missing; build it with `make -C e2e all`", pytrace=False)
    if E2E_BACKEND != "cnosdb":
        pytest.skip("the integration suite needs the purge endpoint of our server")
    def busy_ports() -> list[int]:
        return [p for p in SUITE_FIXED_PORTS.values() if not port_is_free(p)]

    # A process of an earlier run may still be letting go of them: give it a bounded grace period.
    deadline = time.monotonic() + PORTS_GRACE_S
    while (busy := busy_ports()) and time.monotonic() < deadline:
        time.sleep(1)
    if busy:
        pytest.fail(f"Jaeger's integration suite needs the fixed ports {busy} on 127.0.0.1, but they are in use",
                    pytrace=False)

    backend = start_backend(tmp_path / "backend", purge=True)
    try:
        root = tmp_path / "jaeger-src"
        pkg_dir = root / "cmd" / "jaeger" / "internal" / "integration"
        pkg_dir.mkdir(parents=True)
        os.symlink(jaeger_binary("jaeger"), root / "cmd" / "jaeger" / "jaeger")
        render_config(root / "cmd" / "jaeger" / "config-remote-storage.yaml",
                      storage_endpoint=backend.grpc_addr, writer_endpoint=backend.grpc_addr, log_level="info",
                      otlp_http_port=free_port(), query_http_port=free_port(), **SUITE_FIXED_PORTS)
        env = dict(os.environ, STORAGE="grpc", CUSTOM_STORAGE="true",
                   REMOTE_STORAGE_ENDPOINT=backend.grpc_addr, REMOTE_STORAGE_WRITER_ENDPOINT=backend.grpc_addr,
                   PURGER_ENDPOINT=backend.purge_url or "")
        runner = Process("jaeger-integration-suite", [
            suite, "-test.run", "^TestGRPCStorage$", "-test.v", "-test.count=1",
            f"-test.timeout={SUITE_TIMEOUT_S - 60}s",
        ], tmp_path, env=env, cwd=pkg_dir).start()
        try:
            rc: object = runner.proc.wait(timeout=SUITE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        finally:
            runner.stop()  # kills the suite's process group (and its jaeger) if still running
        log_path = runner.log_path
        output = log_path.read_text(errors="replace")
        results = [ln.strip() for ln in output.splitlines()
                   if ln.strip().startswith(("--- FAIL", "--- PASS", "--- SKIP", "goleak:", "panic:"))]
        summary = "\n".join(results)
        assert rc == 0 and "--- PASS: TestGRPCStorage" in output, (
            f"Jaeger storage integration suite failed (rc={rc}). Sub-test results:\n{summary}\n"
            f"---- last lines of {log_path} ----\n" + "\n".join(output.splitlines()[-300:])
        )
    finally:
        backend.stop()
