"""Parity: our query HTTP API (``--query-http-addr``) answers exactly as jaeger-query v1.76.0, on the same data.

Our server runs with ``--query-http-addr`` too; ``jaeger-query`` v1.76.0 reads the same store through our
storage API v1.  The standard data set (``harness.send_dataset``) is written in one of two ways, each with its
own fresh backend (pytest ids):

* ``jaeger-grpc-streaming``: the SDK -> ``jaeger_exporter.JaegerCollectorGrpcExporter`` -> ``jaeger-collector``
  v1.76.0's Jaeger-native gRPC receiver -> our server's streaming span writer (``WriteSpanStream``);
* ``otlp-direct``: the SDK's OTLP/gRPC exporter -> our server's own OTLP ``TraceService`` (its gRPC port).

Every request is sent to both, and the parsed JSON bodies (and statuses) must be equal after normalising only
what Jaeger itself leaves unordered or names arbitrarily:

* ``data`` lists of services, operation names, operations, and dependency links (Jaeger builds them from
  maps or sets, or passes on the storage's order);
* spans of a trace, by ``spanID`` (Jaeger keeps the storage's order);
* process IDs (``p1``, ``p2``, ...): each span's ``processID`` is replaced by its process's content, and
  ``processes`` becomes the sorted list of process contents.

Tags, process tags and log fields are **not** re-sorted: jaeger-query's ``SortTagsAndLogFields`` adjuster puts
them in a fixed order (``KeyValue.Compare``: key, value type, value; a string ``event`` log field first), and
ours must give that same order.  Nothing else is normalised either: ``null`` vs ``[]`` (``warnings``,
``errors``, ``data``), the order of traces, references and logs, value types and numbers all count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import E2E_BACKEND, Backend, jaeger_binary, start_backend
from harness import (
    BACKEND,
    DB,
    FRONTEND,
    SERVICES,
    DataSet,
    Process,
    ProcessDied,
    Response,
    free_port,
    http_get,
    http_ok,
    send_dataset,
)
from jaeger_exporter import JaegerCollectorGrpcExporter

POLL_TIMEOUT = 60.0
INGESTS = ("jaeger-grpc-streaming", "otlp-direct")
UNKNOWN_TRACE_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module", params=INGESTS)
def ingest(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def backend(ingest: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A fresh backend per ingestion path, serving our query HTTP API too; overrides conftest's ``backend``."""
    if E2E_BACKEND != "cnosdb":
        pytest.skip("only our server has a query HTTP API to compare")
    b = start_backend(tmp_path_factory.mktemp(f"backend-parity-{ingest}"), query_http=True)
    yield b
    b.stop()


@dataclass
class Pair:
    ours: str  # our query HTTP API
    jaeger: str  # jaeger-query v1.76.0's HTTP API
    collector_grpc_port: int | None
    processes: list[Process]


@pytest.fixture(scope="module")
def pair(ingest: str, backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    logs = tmp_path_factory.mktemp(f"jaeger-parity-{ingest}")
    storage_flags = [f"--grpc-storage.server={backend.grpc_addr}", "--grpc-storage.tls.enabled=false"]
    env = {"SPAN_STORAGE_TYPE": "grpc"}
    q_http, q_grpc, q_admin = (free_port() for _ in range(3))
    query = Process("jaeger-query", [
        jaeger_binary("query"), *storage_flags,
        f"--admin.http.host-port=127.0.0.1:{q_admin}",
        f"--query.http-server.host-port=127.0.0.1:{q_http}",
        f"--query.grpc-server.host-port=127.0.0.1:{q_grpc}",
        "--log-level=debug",
    ], logs, env=env)
    procs = [query]
    collector = None
    c_grpc = None
    if ingest == "jaeger-grpc-streaming":
        c_admin, c_grpc, c_http, otlp_grpc, otlp_http = (free_port() for _ in range(5))
        collector = Process("jaeger-collector", [
            jaeger_binary("collector"), *storage_flags,
            f"--admin.http.host-port=127.0.0.1:{c_admin}",
            f"--collector.grpc-server.host-port=127.0.0.1:{c_grpc}",
            f"--collector.http-server.host-port=127.0.0.1:{c_http}",
            f"--collector.otlp.grpc.host-port=127.0.0.1:{otlp_grpc}",
            f"--collector.otlp.http.host-port=127.0.0.1:{otlp_http}",
            "--collector.zipkin.host-port=",
            "--log-level=debug",
        ], logs, env=env)
        procs.insert(0, collector)
    try:
        for p in procs:
            p.start()
        if collector is not None:
            collector.wait_ready(lambda: http_ok(f"http://127.0.0.1:{c_admin}/"), timeout=60,
                                 what="admin health 200")
        query.wait_ready(lambda: http_ok(f"http://127.0.0.1:{q_admin}/"), timeout=60, what="admin health 200")
        query.wait_ready(lambda: http_ok(f"http://127.0.0.1:{q_http}/api/services"), timeout=60,
                         what="/api/services 200")
        assert backend.query_http_url is not None
        yield Pair(backend.query_http_url, f"http://127.0.0.1:{q_http}", c_grpc, procs + backend.processes)
    finally:
        for p in reversed(procs):
            p.stop()


@pytest.fixture(scope="module")
def data(ingest: str, backend: Backend, pair: Pair) -> DataSet:
    if ingest == "jaeger-grpc-streaming":
        endpoint = f"127.0.0.1:{pair.collector_grpc_port}"
        ds = send_dataset(exporter_factory=lambda: JaegerCollectorGrpcExporter(endpoint, timeout=10))
    else:
        ds = send_dataset(int(backend.grpc_addr.rsplit(":", 1)[1]))
    checkout = ds.traces["checkout"]

    def all_visible(base: str) -> Any:
        r = http_get(base, "/api/traces", {"service": FRONTEND, "limit": 100})
        n_front = len(r.json()["data"] or []) if r.status == 200 else -1
        t = http_get(base, f"/api/traces/{checkout}")
        n_spans = len(t.json()["data"][0]["spans"]) if t.status == 200 else -1
        return (n_front, n_spans) == (5, 5) or (False, n_front, n_spans)

    for base in (pair.jaeger, pair.ours):
        _poll(lambda base=base: all_visible(base), f"the whole data set through {base}", pair.processes)
    return ds


def _poll(fn, what: str, processes: list[Process]) -> None:
    deadline = time.monotonic() + POLL_TIMEOUT
    last = None
    while True:
        try:
            for p in processes:
                p.check_alive()
            last = fn()
            if last is True:
                return
        except ProcessDied:
            raise
        except Exception as exc:  # not there yet
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {POLL_TIMEOUT:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(1)


# ---- normalisation: only what Jaeger leaves unordered -------------------------------------------------------


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def normalise_trace(trace: dict[str, Any]) -> dict[str, Any]:
    processes = trace.get("processes")
    by_pid = processes if isinstance(processes, dict) else {}
    spans = []
    for span in trace.get("spans") or []:
        span = dict(span)
        if "processID" in span:
            pid = span.pop("processID")
            span["processID→"] = by_pid.get(pid, f"<dangling processID {pid!r}>")
        spans.append(span)
    out = dict(trace)
    if isinstance(trace.get("spans"), list):
        out["spans"] = sorted(spans, key=lambda s: (s.get("spanID", ""), _canon(s)))
    if isinstance(processes, dict):
        out["processes"] = sorted(processes.values(), key=_canon)
    return out


def normalise(kind: str, body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body
    data = body["data"]
    if kind == "names":  # services, legacy operation names
        data = sorted(data)
    elif kind == "operations":
        data = sorted(data, key=lambda o: (o.get("name", ""), o.get("spanKind", ""), _canon(o)))
    elif kind == "dependencies":
        data = sorted(data, key=lambda d: (d.get("parent", ""), d.get("child", ""), _canon(d)))
    elif kind == "traces":
        data = [normalise_trace(t) if isinstance(t, dict) else t for t in data]
    else:
        raise ValueError(kind)
    return {**body, "data": data}


def _differences(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Every path where the two JSON values differ (type, value, missing key, list length)."""
    if type(ours) is not type(theirs):
        return [f"{path}: ours {ours!r:.200} != jaeger {theirs!r:.200}"]
    if isinstance(ours, dict):
        out = []
        for key in sorted(set(ours) | set(theirs)):
            if key not in ours:
                out.append(f"{path}.{key}: missing in ours (jaeger {theirs[key]!r:.200})")
            elif key not in theirs:
                out.append(f"{path}.{key}: extra in ours ({ours[key]!r:.200})")
            else:
                out += _differences(ours[key], theirs[key], f"{path}.{key}")
        return out
    if isinstance(ours, list):
        out = [] if len(ours) == len(theirs) else [f"{path}: length ours {len(ours)} != jaeger {len(theirs)}"]
        for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            out += _differences(a, b, f"{path}[{i}]")
        return out
    return [] if ours == theirs else [f"{path}: ours {ours!r:.200} != jaeger {theirs!r:.200}"]


def _body(r: Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return f"<not JSON: {r.body[:300]!r}>"


Params = dict[str, Any] | list[tuple[str, Any]] | None


def assert_same(pair: Pair, kind: str, path: str, params: Params = None) -> tuple[Response, Any]:
    """GET ``path`` from both; statuses and normalised JSON bodies must be equal.  Returns Jaeger's."""
    theirs_r = http_get(pair.jaeger, path, params)
    ours_r = http_get(pair.ours, path, params)
    theirs, ours = normalise(kind, _body(theirs_r)), normalise(kind, _body(ours_r))
    diffs = _differences(ours, theirs)
    if ours_r.status != theirs_r.status:
        diffs.insert(0, f"status: ours {ours_r.status} != jaeger {theirs_r.status}")
    assert not diffs, (f"GET {path} {params or ''}: our answer differs from jaeger-query's:\n  "
                       + "\n  ".join(diffs[:60]))
    return theirs_r, theirs


# ---- the comparisons -------------------------------------------------------------------------------------------


def test_empty_store(pair: Pair):
    """Before any span is written (this module's first test, so the ``data`` fixture has not run yet)."""
    _, services = assert_same(pair, "names", "/api/services")
    assert not services["data"], f"the store is not empty yet: {services} (did a test using `data` run first?)"
    assert_same(pair, "names", f"/api/services/{FRONTEND}/operations")
    assert_same(pair, "operations", "/api/operations", {"service": FRONTEND})
    assert_same(pair, "operations", "/api/operations", {"service": FRONTEND, "spanKind": "server"})
    assert_same(pair, "traces", "/api/traces", {"service": FRONTEND, "limit": 20})
    assert_same(pair, "traces", f"/api/traces/{UNKNOWN_TRACE_ID}")
    assert_same(pair, "dependencies", "/api/dependencies", {"endTs": time.time_ns() // 1_000_000,
                                                            "lookback": 3_600_000})


def test_services(pair: Pair, data: DataSet):
    _, body = assert_same(pair, "names", "/api/services")
    assert sorted(body["data"]) == sorted(SERVICES)  # the comparison compared something


@pytest.mark.parametrize("service", [*SERVICES, "no-such-service"])
def test_legacy_operations(pair: Pair, data: DataSet, service: str):
    _, body = assert_same(pair, "names", f"/api/services/{service}/operations")
    assert bool(body["data"]) == (service in SERVICES)


@pytest.mark.parametrize("span_kind", ["", "server"], ids=["all-kinds", "server"])
@pytest.mark.parametrize("service", [*SERVICES, "no-such-service"])
def test_operations(pair: Pair, data: DataSet, service: str, span_kind: str):
    params = {"service": service, **({"spanKind": span_kind} if span_kind else {})}
    _, body = assert_same(pair, "operations", "/api/operations", params)
    assert bool(body["data"]) == (service in SERVICES)


@pytest.mark.parametrize("label", ["checkout", "health", "browse10", "browse20", "browse30"])
def test_trace_by_id(pair: Pair, data: DataSet, label: str):
    r, body = assert_same(pair, "traces", f"/api/traces/{data.traces[label]}")
    assert r.status == 200 and len(body["data"]) == 1


def test_unknown_trace(pair: Pair, data: DataSet):
    r, _ = assert_same(pair, "traces", f"/api/traces/{UNKNOWN_TRACE_ID}")
    assert r.status == 404, (r.status, r.body[:300])


def test_multi_get_by_trace_ids(pair: Pair, data: DataSet):
    params = [("traceID", data.traces["health"]), ("traceID", UNKNOWN_TRACE_ID), ("traceID", data.traces["browse20"])]
    _, body = assert_same(pair, "traces", "/api/traces", params)
    assert len(body["data"]) == 2


def _window(data: DataSet) -> dict[str, int]:
    """µs around the whole data set (which spans [base, base + 530 ms])."""
    return {"start": data.base_ns // 1000 - 60_000_000, "end": data.base_ns // 1000 + 60_000_000}


SEARCHES = [
    pytest.param(FRONTEND, {}, 100, id="frontend"),
    pytest.param(DB, {}, 100, id="db-whole-trace"),
    pytest.param(FRONTEND, {"user.tier": "gold"}, 100, id="string-tag"),
    pytest.param(FRONTEND, {"http.status_code": "200"}, 2, id="int-tag-limit-2"),
    pytest.param(FRONTEND, {"user.tier": "gold", "http.status_code": "200"}, 1, id="two-tags-limit-1"),
    pytest.param(FRONTEND, {"user.vip": "true", "cart.ratio": "0.75"}, 10, id="bool-float-tags"),
    pytest.param(DB, {"error": "true"}, 10, id="error"),
    pytest.param(DB, {"deployment.environment": "e2e"}, 10, id="process-tag"),
    pytest.param(BACKEND, {"order.items": "3"}, 10, id="log-field"),
    pytest.param(FRONTEND, {"user.tier": "bronze"}, 10, id="no-match"),
]


@pytest.mark.parametrize(("service", "tags", "limit"), SEARCHES)
def test_search_by_tags(pair: Pair, data: DataSet, service: str, tags: dict[str, str], limit: int):
    params: dict[str, Any] = {"service": service, "limit": limit, **_window(data)}
    if tags:
        params["tags"] = json.dumps(tags)
    r, _ = assert_same(pair, "traces", "/api/traces", params)
    assert r.status == 200


@pytest.mark.parametrize("params", [
    {"minDuration": "15ms"},
    {"minDuration": "110ms"},
    {"minDuration": "15ms", "maxDuration": "25ms", "operation": "HTTP GET /browse"},
    {"minDuration": "1h"},
], ids=["15ms", "110ms", "range-with-operation", "none"])
def test_search_by_duration(pair: Pair, data: DataSet, params: dict[str, str]):
    r, _ = assert_same(pair, "traces", "/api/traces", {"service": FRONTEND, "limit": 100, **params})
    assert r.status == 200


def test_search_time_window(pair: Pair, data: DataSet):
    params = {"service": FRONTEND, "limit": 100, "start": (data.base_ns + 250_000_000) // 1000,
              "end": (data.base_ns + 450_000_000) // 1000}
    _, body = assert_same(pair, "traces", "/api/traces", params)
    assert len(body["data"]) == 2


def test_dependencies(pair: Pair, data: DataSet):
    end_ms = time.time_ns() // 1_000_000 + 60_000
    _, body = assert_same(pair, "dependencies", "/api/dependencies", {"endTs": end_ms, "lookback": 3_600_000})
    assert len(body["data"]) == 2


def test_dependencies_outside_window(pair: Pair, data: DataSet):
    end_ms = data.base_ns // 1_000_000 - 3_600_000
    assert_same(pair, "dependencies", "/api/dependencies", {"endTs": end_ms, "lookback": 600_000})
