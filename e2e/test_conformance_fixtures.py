"""Jaeger's own storage conformance fixtures (v1.76.0), replayed against our server on cnosdb-lite.

The fixtures are Jaeger's files: they are not in this repository. `make -C e2e test` finds them in the Go
module cache and passes their directory as `JAEGER_FIXTURES_DIR` (e2e/jaeger_fixtures.py, docs/e2e.md); without
it every test here fails. `make test` runs the same checks on the project's own cases (tests/conformance_cases.py).

For each of the 29 traces and the 22 search cases (`queries.json`), with the backend as `start_backend` starts it
(cnosdb-lite and cnosdb-jaeger-storage, each a process):

- the Jaeger ⇄ OTLP translation gives back every fixture span exactly (no server);
- written through Jaeger v1 `WriteSpanStream` and through OTLP/HTTP `POST /v1/traces`, every trace reads back
  exactly through v1 `GetTrace`, and every search case returns exactly the expected traces (`FindTraces`, and
  `FindTraceIDs` for the v1 path);
- written through CnosDB's native `POST /api/v1/traces` (cnosdb-lite playing CnosDB), which stores every
  value as a string, every search case and `GetTrace` find the expected traces, compared by trace and span IDs;
- `example_trace` shares its trace ID with `default`, so, as in Jaeger's suite, it is written alone into a
  backend of its own: its exact round trip on both write paths, GetServices and GetOperations.
"""

from __future__ import annotations

import base64
import functools
import urllib.request
from collections.abc import Iterable, Iterator

import grpc
import pytest
from conftest import E2E_BACKEND, Backend, start_backend
from harness import GRPC_OPTIONS
from jaeger_fixtures import (
    ENV,
    EXPECTED_QUERIES,
    EXPECTED_TRACES,
    FIXTURES_DIR,
    PROBLEM,
    QUERIES,
    TRACE_NAMES,
    load_trace,
    query_of,
    recent_dates,
)

from cnosdb_jaeger_storage.model.jaeger_otlp import jaeger_spans_to_resource_spans, resource_spans_to_jaeger
from cnosdb_jaeger_storage.proto import model_pb2, storage_v1_grpc, trace_service_pb2
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as pb

MISSING = f"no-{ENV}"  # the one parameter of every test when the fixtures cannot be found: each test then fails
EXAMPLE = "example_trace"
SEARCH_NAMES = [n for n in TRACE_NAMES if n != EXAMPLE] or [MISSING]
ALL_NAMES = TRACE_NAMES or [MISSING]
CASES = QUERIES or [{"Caption": MISSING}]
CASE_IDS = [c["Caption"] for c in CASES]
TABLE = "jaeger_spans"
V1, OTLP, NATIVE = "jaeger-v1-stream", "otlp-http", "cnosdb-native"
EXACT_PATHS = [V1, OTLP]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module", autouse=True)
def _jaeger_fixtures_present() -> None:
    if FIXTURES_DIR is None:
        pytest.fail(PROBLEM, pytrace=False)


@functools.cache
def fixture(name: str) -> model_pb2.Trace:
    return load_trace(name, recent_dates())


# -- talking to the backend ----------------------------------------------------------------------------------------


def channel(backend: Backend) -> grpc.Channel:
    return grpc.insecure_channel(backend.grpc_addr,
                                 options=[*GRPC_OPTIONS, ("grpc.max_receive_message_length", 64 << 20)])


def reader(ch: grpc.Channel) -> storage_v1_grpc.SpanReaderPluginStub:
    return storage_v1_grpc.SpanReaderPluginStub(ch)


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf", **(headers or {})})
    with _OPENER.open(request, timeout=30) as response:
        return response.status


def export_request(name: str) -> bytes:
    spans = fixture(name).spans
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=jaeger_spans_to_resource_spans(spans)).SerializeToString()


def write_v1_stream(backend: Backend, names: list[str]) -> None:
    with channel(backend) as ch:
        storage_v1_grpc.StreamingSpanWriterPluginStub(ch).WriteSpanStream(
            (pb.WriteSpanRequest(span=s) for name in names for s in fixture(name).spans), timeout=60)


def write_otlp_http(backend: Backend, names: list[str]) -> None:
    assert backend.otlp_http_url
    for name in names:
        assert post(backend.otlp_http_url + "/v1/traces", export_request(name)) == 200, name


def write_cnosdb_native(backend: Backend, names: list[str]) -> None:
    assert backend.cnosdb_url
    headers = {"tenant": "cnosdb", "db": "jaeger", "table": TABLE,
               "Authorization": "Basic " + base64.b64encode(b"root:").decode()}
    for name in names:
        assert post(backend.cnosdb_url + "/api/v1/traces", export_request(name), headers) == 200, name


WRITERS = {V1: write_v1_stream, OTLP: write_otlp_http, NATIVE: write_cnosdb_native}


def get_trace(backend: Backend, trace_id: bytes) -> list[model_pb2.Span]:
    with channel(backend) as ch:
        chunks = reader(ch).GetTrace(pb.GetTraceRequest(trace_id=trace_id), timeout=30)
        return [span for chunk in chunks for span in chunk.spans]


def find_traces(backend: Backend, query: pb.TraceQueryParameters) -> list[list[model_pb2.Span]]:
    """Traces as Jaeger's client rebuilds them: a new trace whenever the trace ID changes."""
    traces: list[list[model_pb2.Span]] = []
    with channel(backend) as ch:
        for chunk in reader(ch).FindTraces(pb.FindTracesRequest(query=query), timeout=30):
            assert 0 < len(chunk.spans) <= 1000
            for span in chunk.spans:
                if not traces or traces[-1][0].trace_id != span.trace_id:
                    traces.append([])
                traces[-1].append(span)
    return traces


# -- comparisons --------------------------------------------------------------------------------------------------


def _sort_key_values(repeated) -> None:
    ordered = sorted(repeated, key=lambda kv: (kv.key, kv.SerializeToString(deterministic=True)))
    del repeated[:]
    repeated.extend(ordered)


def canonical(span: model_pb2.Span, *, keep_process_id: bool = False) -> model_pb2.Span:
    """A copy with tags, process tags and log fields sorted (and no process ID): Jaeger's own comparison."""
    copy = model_pb2.Span()
    copy.CopyFrom(span)
    if not keep_process_id:
        copy.process_id = ""
    for repeated in (copy.tags, copy.process.tags, *(log.fields for log in copy.logs)):
        _sort_key_values(repeated)
    return copy


def normalized(spans: Iterable[model_pb2.Span]) -> list[bytes]:
    return sorted(canonical(span).SerializeToString(deterministic=True) for span in spans)


def ids(traces: Iterable[Iterable[model_pb2.Span]]) -> list[list[tuple[bytes, bytes]]]:
    return sorted(sorted((s.trace_id, s.span_id) for s in trace) for trace in traces)


# -- backends: one per write path and data set, each written once ---------------------------------------------------


def _serve(tmp_path_factory: pytest.TempPathFactory, path: str, names: list[str]) -> Iterator[Backend]:
    if E2E_BACKEND != "cnosdb":
        pytest.skip("replays Jaeger's fixtures through our server's write paths (E2E_BACKEND=cnosdb only)")
    backend = start_backend(tmp_path_factory.mktemp(f"fixtures-{path}"))
    try:
        WRITERS[path](backend, names)
        yield backend
    finally:
        backend.stop()


@pytest.fixture(scope="module")
def search_jaeger_v1_stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    yield from _serve(tmp_path_factory, V1, SEARCH_NAMES)


@pytest.fixture(scope="module")
def search_otlp_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    yield from _serve(tmp_path_factory, OTLP, SEARCH_NAMES)


@pytest.fixture(scope="module")
def search_cnosdb_native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    yield from _serve(tmp_path_factory, NATIVE, SEARCH_NAMES)


@pytest.fixture(scope="module")
def example_jaeger_v1_stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    yield from _serve(tmp_path_factory, V1, [EXAMPLE])


@pytest.fixture(scope="module")
def example_otlp_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    yield from _serve(tmp_path_factory, OTLP, [EXAMPLE])


def backend_of(request: pytest.FixtureRequest, data: str, path: str) -> Backend:
    return request.getfixturevalue(f"{data}_{path.replace('-', '_')}")


# -- the tests -----------------------------------------------------------------------------------------------------


def test_jaeger_fixtures_are_all_there() -> None:
    assert len(TRACE_NAMES) == EXPECTED_TRACES, f"{FIXTURES_DIR}: {TRACE_NAMES}"
    assert len(QUERIES) == EXPECTED_QUERIES, f"{FIXTURES_DIR}/queries.json"
    assert EXAMPLE in TRACE_NAMES
    assert {name for case in QUERIES for name in case["ExpectedFixtures"]} <= set(SEARCH_NAMES)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_translation_round_trip(name: str) -> None:
    trace = load_trace(name)
    assert trace.spans
    back = resource_spans_to_jaeger(jaeger_spans_to_resource_spans(trace.spans))
    assert len(back) == len(trace.spans)
    # resource_spans_to_jaeger groups spans by process; compare as multisets.
    want = sorted(canonical(s, keep_process_id=True).SerializeToString(deterministic=True) for s in trace.spans)
    got = sorted(canonical(s, keep_process_id=True).SerializeToString(deterministic=True) for s in back)
    assert got == want


@pytest.mark.parametrize("path", EXACT_PATHS)
@pytest.mark.parametrize("name", SEARCH_NAMES)
def test_get_trace_round_trips_every_fixture(request: pytest.FixtureRequest, path: str, name: str) -> None:
    backend = backend_of(request, "search", path)
    trace = fixture(name)
    assert normalized(get_trace(backend, trace.spans[0].trace_id)) == normalized(trace.spans)


@pytest.mark.parametrize("path", EXACT_PATHS)
def test_get_trace_round_trips_example_trace(request: pytest.FixtureRequest, path: str) -> None:
    backend = backend_of(request, "example", path)
    trace = fixture(EXAMPLE)
    assert normalized(get_trace(backend, trace.spans[0].trace_id)) == normalized(trace.spans)


@pytest.mark.parametrize("path", EXACT_PATHS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_find_traces_returns_exactly_the_expected_traces(request: pytest.FixtureRequest, path: str,
                                                         case: dict) -> None:
    found = find_traces(backend_of(request, "search", path), query_of(case))
    expected = [fixture(name) for name in case["ExpectedFixtures"]]
    assert sorted(normalized(s) for s in found) == sorted(normalized(t.spans) for t in expected)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_find_trace_ids_matches_find_traces(search_jaeger_v1_stream: Backend, case: dict) -> None:
    with channel(search_jaeger_v1_stream) as ch:
        response = reader(ch).FindTraceIDs(pb.FindTraceIDsRequest(query=query_of(case)), timeout=30)
    assert set(response.trace_ids) == {fixture(name).spans[0].trace_id for name in case["ExpectedFixtures"]}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_search_over_cnosdb_native_rows_finds_the_expected_traces(search_cnosdb_native: Backend,
                                                                   case: dict) -> None:
    found = find_traces(search_cnosdb_native, query_of(case))
    assert ids(found) == ids(fixture(name).spans for name in case["ExpectedFixtures"])


@pytest.mark.parametrize("name", SEARCH_NAMES)
def test_get_trace_over_cnosdb_native_rows_finds_every_span(search_cnosdb_native: Backend, name: str) -> None:
    trace = fixture(name)
    assert ids([get_trace(search_cnosdb_native, trace.spans[0].trace_id)]) == ids([trace.spans])


@pytest.mark.parametrize("path", EXACT_PATHS)
def test_get_services(request: pytest.FixtureRequest, path: str) -> None:
    with channel(backend_of(request, "example", path)) as ch:
        services = reader(ch).GetServices(pb.GetServicesRequest(), timeout=30).services
    assert set(services) >= {"example-service-1", "example-service-2", "example-service-3"}
    assert list(services) == sorted(set(services))


@pytest.mark.parametrize("path", EXACT_PATHS)
def test_get_operations(request: pytest.FixtureRequest, path: str) -> None:
    with channel(backend_of(request, "example", path)) as ch:
        response = reader(ch).GetOperations(pb.GetOperationsRequest(service="example-service-1"), timeout=30)
        server_only = reader(ch).GetOperations(
            pb.GetOperationsRequest(service="example-service-1", span_kind="server"), timeout=30)
    assert sorted((o.name, o.span_kind) for o in response.operations) == [
        ("example-operation-1", ""), ("example-operation-3", "server"), ("example-operation-4", "client")]
    assert list(response.operationNames) == ["example-operation-1", "example-operation-3", "example-operation-4"]
    assert [(o.name, o.span_kind) for o in server_only.operations] == [("example-operation-3", "server")]
