"""The search cases (tests/conformance_cases.py) for every write path, with cnosdb-lite in its own process
(a CnosDB over HTTP):

- Jaeger v1 `WriteSpanStream` and OTLP/HTTP `POST /v1/traces` of this server: the traces read back exactly;
- CnosDB's native `POST /api/v1/traces` (cnosdb-lite playing CnosDB): every value is stored as a string
  there, so the search must find the same traces, compared by trace and span IDs (and the near misses that
  CnosDB's writer makes match, `SearchCase.native_also`).
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Iterable

import pytest
from conformance_cases import CASES, SearchCase
from harness import RunningServer, cnosdb_lite_process, running_server, server_config
from test_conformance_v1 import (
    CASE_IDS,
    SEARCH_TRACES,
    find_traces,
    get_trace,
    normalized,
    query_of,
    trace_of,
    write_stream,
)

from cnosdb_jaeger_storage.model.jaeger_otlp import jaeger_spans_to_resource_spans
from cnosdb_jaeger_storage.proto import trace_service_pb2

TABLE = "jaeger_spans"


def export_request(name: str) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=jaeger_spans_to_resource_spans(trace_of(name).spans))
    return request.SerializeToString()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf", **headers})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


@pytest.fixture(scope="module")
def otlp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterable[RunningServer]:
    data = tmp_path_factory.mktemp("otlp")
    with cnosdb_lite_process(data / "lite") as url, running_server(server_config(data, cnosdb_url=url)) as s:
        for name in SEARCH_TRACES:
            assert post(s.url("otlp_http") + "/v1/traces", export_request(name), {}) == 200
        yield s


@pytest.fixture(scope="module")
def jaeger_v1_server(tmp_path_factory: pytest.TempPathFactory) -> Iterable[RunningServer]:
    data = tmp_path_factory.mktemp("v1")
    with cnosdb_lite_process(data / "lite") as url, running_server(server_config(data, cnosdb_url=url)) as s:
        write_stream(s, (span for name in SEARCH_TRACES for span in trace_of(name).spans))
        yield s


@pytest.fixture(scope="module")
def native_server(tmp_path_factory: pytest.TempPathFactory) -> Iterable[RunningServer]:
    data = tmp_path_factory.mktemp("native")
    with cnosdb_lite_process(data / "lite") as url, running_server(server_config(data, cnosdb_url=url)) as s:
        headers = {"tenant": "cnosdb", "db": "jaeger", "table": TABLE,
                   "Authorization": "Basic " + base64.b64encode(b"root:").decode()}
        for name in SEARCH_TRACES:
            assert post(url + "/api/v1/traces", export_request(name), headers) == 200
        yield s


def ids(traces: Iterable[Iterable]) -> list[list[tuple[bytes, bytes]]]:
    return sorted(sorted((s.trace_id, s.span_id) for s in trace) for trace in traces)


@pytest.mark.parametrize("path", ["jaeger_v1_server", "otlp_server"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_search_returns_the_exact_traces(request: pytest.FixtureRequest, path: str, case: SearchCase) -> None:
    found = find_traces(request.getfixturevalue(path), query_of(case))
    expected = [trace_of(name) for name in case.expected]
    assert sorted(normalized(s) for s in found) == sorted(normalized(t.spans) for t in expected)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_search_over_cnosdb_native_rows_finds_the_expected_traces(native_server: RunningServer,
                                                                   case: SearchCase) -> None:
    found = find_traces(native_server, query_of(case))
    assert ids(found) == ids(trace_of(name).spans for name in case.expected + case.native_also)


@pytest.mark.parametrize("path", ["jaeger_v1_server", "otlp_server"])
@pytest.mark.parametrize("name", SEARCH_TRACES)
def test_get_trace_round_trips_every_trace(request: pytest.FixtureRequest, path: str, name: str) -> None:
    trace = trace_of(name)
    assert normalized(get_trace(request.getfixturevalue(path), trace.spans[0].trace_id)) == normalized(trace.spans)


@pytest.mark.parametrize("name", SEARCH_TRACES)
def test_get_trace_over_cnosdb_native_rows_finds_every_span(native_server: RunningServer, name: str) -> None:
    trace = trace_of(name)
    assert ids([get_trace(native_server, trace.spans[0].trace_id)]) == ids([trace.spans])
