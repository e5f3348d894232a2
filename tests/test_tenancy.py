"""Jaeger tenants (`--tenants`): each tenant's spans live in a database of its own, and no write path or read
path lets one tenant see another's. Without `--tenants` the tenant header means nothing."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import requests
from google.rpc import status_pb2
from harness import RunningServer, running_server, server_config

from cnosdb_jaeger_storage.proto import (
    model_pb2,
    storage_v1_grpc,
    trace_pb2,
    trace_service_pb2,
    trace_service_pb2_grpc,
    trace_storage_grpc,
    trace_storage_pb2,
)
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as v1

TENANTS = ("acme", "beta")
PATHS = ("v1", "otlp-grpc", "otlp-http")
START = time.time_ns() - 10 * 60 * 10**9


def otlp_request(service: str, trace_id: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = service
    rs.scope_spans.add().spans.add(trace_id=trace_id, span_id=os.urandom(8), name=f"{service}-op",
                                   kind=trace_pb2.Span.SPAN_KIND_SERVER, start_time_unix_nano=START,
                                   end_time_unix_nano=START + 1000)
    return request


def jaeger_span(service: str, trace_id: bytes) -> model_pb2.Span:
    span = model_pb2.Span(trace_id=trace_id, span_id=os.urandom(8), operation_name=f"{service}-op",
                          process=model_pb2.Process(service_name=service))
    span.start_time.FromNanoseconds(START)
    span.duration.FromNanoseconds(1000)
    return span


def metadata(tenant: str | None) -> list[tuple[str, str]]:
    return [] if tenant is None else [("x-tenant", tenant)]


def http_headers(tenant: str | None) -> dict[str, str]:
    return {} if tenant is None else {"x-tenant": tenant}


def write(server: RunningServer, path: str, tenant: str | None, service: str, trace_id: bytes) -> None:
    if path == "otlp-http":
        response = requests.post(server.url("otlp_http") + "/v1/traces",
                                 data=otlp_request(service, trace_id).SerializeToString(),
                                 headers={"Content-Type": "application/x-protobuf", **http_headers(tenant)},
                                 timeout=30)
        assert response.status_code == 200, response.content
        return
    with server.channel() as channel:
        if path == "v1":
            storage_v1_grpc.SpanWriterPluginStub(channel).WriteSpan(
                v1.WriteSpanRequest(span=jaeger_span(service, trace_id)), metadata=metadata(tenant))
        else:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                otlp_request(service, trace_id), metadata=metadata(tenant))


# --- readers, one per API ------------------------------------------------------------------------------


def v1_services(server: RunningServer, tenant: str | None) -> set[str]:
    with server.channel() as channel:
        return set(storage_v1_grpc.SpanReaderPluginStub(channel).GetServices(
            v1.GetServicesRequest(), metadata=metadata(tenant)).services)


def v1_trace(server: RunningServer, tenant: str | None, trace_id: bytes) -> list[str]:
    with server.channel() as channel:
        try:
            chunks = list(storage_v1_grpc.SpanReaderPluginStub(channel).GetTrace(
                v1.GetTraceRequest(trace_id=trace_id), metadata=metadata(tenant)))
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return []
            raise
    return [span.process.service_name for chunk in chunks for span in chunk.spans]


def v1_find(server: RunningServer, tenant: str | None, service: str) -> list[str]:
    query = v1.TraceQueryParameters(service_name=service, num_traces=10)
    with server.channel() as channel:
        chunks = storage_v1_grpc.SpanReaderPluginStub(channel).FindTraces(
            v1.FindTracesRequest(query=query), metadata=metadata(tenant))
        return [span.process.service_name for chunk in chunks for span in chunk.spans]


def v2_services(server: RunningServer, tenant: str | None) -> set[str]:
    with server.channel() as channel:
        return set(trace_storage_grpc.TraceReaderStub(channel).GetServices(
            trace_storage_pb2.GetServicesRequest(), metadata=metadata(tenant)).services)


def v2_trace(server: RunningServer, tenant: str | None, trace_id: bytes) -> list[str]:
    with server.channel() as channel:
        chunks = trace_storage_grpc.TraceReaderStub(channel).GetTraces(trace_storage_pb2.GetTracesRequest(
            query=[trace_storage_pb2.GetTraceParams(trace_id=trace_id)]), metadata=metadata(tenant))
        return [rs.resource.attributes[0].value.string_value for chunk in chunks for rs in chunk.resource_spans]


def v2_find(server: RunningServer, tenant: str | None, service: str) -> list[str]:
    query = trace_storage_pb2.TraceQueryParameters(service_name=service, search_depth=10)
    with server.channel() as channel:
        chunks = trace_storage_grpc.TraceReaderStub(channel).FindTraces(
            trace_storage_pb2.FindTracesRequest(query=query), metadata=metadata(tenant))
        return [rs.resource.attributes[0].value.string_value for chunk in chunks for rs in chunk.resource_spans]


def http_get(server: RunningServer, tenant: str | None, path: str, headers: dict[str, str] | None = None,
             **params: Any) -> requests.Response:
    return requests.get(server.url("query_http") + path, params=params,
                        headers={**http_headers(tenant), **(headers or {})}, timeout=30)


def http_services(server: RunningServer, tenant: str | None) -> set[str]:
    return set(http_get(server, tenant, "/api/services").json()["data"])


def http_trace(server: RunningServer, tenant: str | None, trace_id: bytes) -> list[str]:
    response = http_get(server, tenant, f"/api/traces/{trace_id.hex()}")
    if response.status_code == 404:
        return []
    [trace] = response.json()["data"]
    return [trace["processes"][span["processID"]]["serviceName"] for span in trace["spans"]]


def http_find(server: RunningServer, tenant: str | None, service: str) -> list[str]:
    body = http_get(server, tenant, "/api/traces", service=service).json()
    return [t["processes"][s["processID"]]["serviceName"] for t in body["data"] for s in t["spans"]]


# --- with tenants ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenanted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, bytes]]]:
    """Each tenant wrote one trace through each write path; service and key are `<tenant>-<path>`."""
    with running_server(server_config(tmp_path_factory.mktemp("tenants"), tenants=" acme, beta ",
                                      query_http_addr="127.0.0.1:0")) as server:
        trace_ids = {}
        for tenant in TENANTS:
            for path in PATHS:
                trace_ids[f"{tenant}-{path}"] = os.urandom(16)
                write(server, path, tenant, f"{tenant}-{path}", trace_ids[f"{tenant}-{path}"])
        yield server, trace_ids


SERVICE_READERS = [pytest.param(v1_services, id="v1"), pytest.param(v2_services, id="v2"),
                   pytest.param(http_services, id="query-http")]
TRACE_READERS = [pytest.param(v1_trace, id="v1"), pytest.param(v2_trace, id="v2"),
                 pytest.param(http_trace, id="query-http")]
SEARCHERS = [pytest.param(v1_find, id="v1"), pytest.param(v2_find, id="v2"), pytest.param(http_find, id="query-http")]


@pytest.mark.parametrize("reader", SERVICE_READERS)
@pytest.mark.parametrize("tenant", TENANTS)
def test_each_tenant_lists_only_its_own_services(tenanted, reader: Callable[..., set[str]], tenant: str) -> None:
    server, _ = tenanted
    assert reader(server, tenant) == {f"{tenant}-{path}" for path in PATHS}


@pytest.mark.parametrize("reader", TRACE_READERS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("tenant", TENANTS)
def test_a_trace_is_readable_only_by_its_tenant(tenanted, reader: Callable[..., list[str]], path: str,
                                                tenant: str) -> None:
    server, trace_ids = tenanted
    other = next(t for t in TENANTS if t != tenant)
    key = f"{tenant}-{path}"
    assert reader(server, tenant, trace_ids[key]) == [key]
    assert reader(server, other, trace_ids[key]) == []


@pytest.mark.parametrize("searcher", SEARCHERS)
@pytest.mark.parametrize("tenant", TENANTS)
def test_a_search_finds_only_the_tenants_traces(tenanted, searcher: Callable[..., list[str]], tenant: str) -> None:
    server, _ = tenanted
    other = next(t for t in TENANTS if t != tenant)
    for path in PATHS:
        assert searcher(server, tenant, f"{tenant}-{path}") == [f"{tenant}-{path}"]
        assert searcher(server, other, f"{tenant}-{path}") == []


def _grpc_calls() -> list[Any]:
    trace_id = bytes(range(16))
    calls: dict[str, Callable[[grpc.Channel, list[tuple[str, str]]], object]] = {
        "v1-write-span": lambda ch, md: storage_v1_grpc.SpanWriterPluginStub(ch).WriteSpan(
            v1.WriteSpanRequest(span=jaeger_span("refused", trace_id)), metadata=md),
        "v1-write-stream": lambda ch, md: storage_v1_grpc.StreamingSpanWriterPluginStub(ch).WriteSpanStream(
            iter([v1.WriteSpanRequest(span=jaeger_span("refused", trace_id))]), metadata=md),
        "v1-get-services": lambda ch, md: storage_v1_grpc.SpanReaderPluginStub(ch).GetServices(
            v1.GetServicesRequest(), metadata=md),
        "v1-get-trace": lambda ch, md: list(storage_v1_grpc.SpanReaderPluginStub(ch).GetTrace(
            v1.GetTraceRequest(trace_id=trace_id), metadata=md)),
        "v1-dependencies": lambda ch, md: storage_v1_grpc.DependenciesReaderPluginStub(ch).GetDependencies(
            v1.GetDependenciesRequest(), metadata=md),
        "v2-get-services": lambda ch, md: trace_storage_grpc.TraceReaderStub(ch).GetServices(
            trace_storage_pb2.GetServicesRequest(), metadata=md),
        "v2-find-traces": lambda ch, md: list(trace_storage_grpc.TraceReaderStub(ch).FindTraces(
            trace_storage_pb2.FindTracesRequest(query=trace_storage_pb2.TraceQueryParameters(service_name="x")),
            metadata=md)),
        "otlp-export": lambda ch, md: trace_service_pb2_grpc.TraceServiceStub(ch).Export(
            otlp_request("refused", trace_id), metadata=md),
    }
    return [pytest.param(call, id=name) for name, call in calls.items()]


REFUSALS = [pytest.param(None, "missing tenant header 'x-tenant'", id="missing"),
            pytest.param("gamma", "unknown tenant 'gamma'", id="unknown"),
            pytest.param("ACME", "unknown tenant 'ACME'", id="wrong-case"),
            pytest.param("", "missing tenant header 'x-tenant'", id="empty")]


@pytest.mark.parametrize(("tenant", "message"), REFUSALS)
@pytest.mark.parametrize("call", _grpc_calls())
def test_grpc_refuses_a_missing_or_unknown_tenant(tenanted, call: Callable[..., object], tenant: str | None,
                                                  message: str) -> None:
    server, _ = tenanted
    with server.channel() as channel, pytest.raises(grpc.RpcError) as error:
        call(channel, metadata(tenant))
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.value.details() == message


@pytest.mark.parametrize(("tenant", "message"), REFUSALS)
def test_otlp_http_refuses_a_missing_or_unknown_tenant(tenanted, tenant: str | None, message: str) -> None:
    server, _ = tenanted
    trace_id = os.urandom(16)
    response = requests.post(server.url("otlp_http") + "/v1/traces",
                             data=otlp_request("refused-http", trace_id).SerializeToString(),
                             headers={"Content-Type": "application/x-protobuf", **http_headers(tenant)}, timeout=30)
    assert response.status_code == 403
    status = status_pb2.Status.FromString(response.content)
    assert (status.code, status.message) == (grpc.StatusCode.PERMISSION_DENIED.value[0], message)
    for known in TENANTS:
        assert "refused-http" not in v1_services(server, known)


@pytest.mark.parametrize(("tenant", "message"), REFUSALS)
@pytest.mark.parametrize("path", ["/api/services", "/api/traces?service=x", "/api/traces/0123456789abcdef",
                                  "/api/operations?service=x", "/api/dependencies"])
def test_query_http_refuses_a_missing_or_unknown_tenant(tenanted, tenant: str | None, message: str,
                                                        path: str) -> None:
    server, _ = tenanted
    response = http_get(server, tenant, path)
    assert response.status_code == 403
    assert response.json() == {"data": None, "total": 0, "limit": 0, "offset": 0,
                               "errors": [{"code": 403, "msg": message}]}


def cnosdb_write(server: RunningServer, headers: dict[str, str], service: str, trace_id: bytes) -> requests.Response:
    """A write through CnosDB's own path, with CnosDB's headers (and a Jaeger tenant header, if any)."""
    return requests.post(server.url("otlp_http") + "/api/v1/traces",
                         data=otlp_request(service, trace_id).SerializeToString(),
                         headers={"Content-Type": "application/x-protobuf", **headers}, timeout=30)


# Every combination of the Jaeger tenant header and CnosDB's tenant/db/table headers that the probes tried.
HEADER_PROBES = [
    pytest.param(tenant, cnosdb, id=f"x-tenant={tenant}-{'-'.join(f'{k}={v}' for k, v in cnosdb.items())}")
    for tenant in (None, "acme", "beta")
    for cnosdb in ({"db": "acme"}, {"db": "beta"}, {"db": "jaeger"}, {"db": "nodb"}, {"tenant": "cnosdb"},
                   {"tenant": "other", "db": "acme"}, {"table": "jaeger_spans"}, {"db": "beta", "table": "t2"},
                   {"tenant": "cnosdb", "db": "acme", "table": "jaeger_spans"})
]


def _allowed(tenant: str | None, cnosdb: dict[str, str]) -> bool:
    """Only a listed tenant, and CnosDB's headers only within that tenant's own database."""
    return tenant is not None and cnosdb.get("db", tenant) == tenant and cnosdb.get("tenant", "cnosdb") == "cnosdb"


@pytest.mark.parametrize(("tenant", "cnosdb"), HEADER_PROBES)
def test_cnosdb_headers_never_leave_the_tenants_database_on_write(tenanted, tenant: str | None,
                                                                  cnosdb: dict[str, str]) -> None:
    server, _ = tenanted
    trace_id = os.urandom(16)
    response = cnosdb_write(server, {**http_headers(tenant), **cnosdb}, "probe", trace_id)
    if not _allowed(tenant, cnosdb):
        assert response.status_code == 403, response.content
        for known in TENANTS:
            assert v1_trace(server, known, trace_id) == []
        return
    assert response.status_code == 200, response.content
    assert tenant is not None
    table = {"table": cnosdb["table"]} if "table" in cnosdb else {}
    found = http_get(server, tenant, f"/api/traces/{trace_id.hex()}", headers=table)
    assert found.status_code == 200
    other = next(t for t in TENANTS if t != tenant)
    assert http_get(server, other, f"/api/traces/{trace_id.hex()}", headers=table).status_code in (403, 404)


@pytest.mark.parametrize(("tenant", "cnosdb"), HEADER_PROBES)
def test_cnosdb_headers_never_leave_the_tenants_database_on_read(tenanted, tenant: str | None,
                                                                 cnosdb: dict[str, str]) -> None:
    server, _ = tenanted
    response = http_get(server, tenant, "/api/services", headers=cnosdb)
    if not _allowed(tenant, cnosdb):
        assert response.status_code == 403, response.content
        return
    assert response.status_code == 200
    assert tenant is not None
    services = set(response.json()["data"])
    assert not any(service.startswith(next(t for t in TENANTS if t != tenant)) for service in services)


@pytest.mark.parametrize("call", _grpc_calls())
def test_grpc_ignores_cnosdbs_headers(tenanted, call: Callable[..., object]) -> None:
    """gRPC callers are Jaeger's: only the tenant header addresses storage, a `db` entry changes nothing."""
    server, _ = tenanted
    with server.channel() as channel:
        call(channel, [("x-tenant", "beta"), ("db", "acme"), ("tenant", "other")])
    assert "refused" not in v1_services(server, "acme")


# --- without tenants ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untenanted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("no_tenants"), query_http_addr="127.0.0.1:0")) as s:
        yield s


@pytest.mark.parametrize("path", PATHS)
def test_without_tenants_the_header_is_ignored(untenanted: RunningServer, path: str) -> None:
    trace_id = os.urandom(16)
    service = f"shared-{path}"
    write(untenanted, path, "acme", service, trace_id)
    for tenant in ("acme", "beta", None):
        assert v1_trace(untenanted, tenant, trace_id) == [service]
        assert v2_trace(untenanted, tenant, trace_id) == [service]
        assert http_trace(untenanted, tenant, trace_id) == [service]
        assert service in v1_services(untenanted, tenant)


@pytest.mark.parametrize(("headers", "status"), [
    pytest.param({"db": "no_such_database"}, 404, id="unknown-database"),
    pytest.param({"tenant": "no_such_tenant"}, 404, id="unknown-cnosdb-tenant"),
    pytest.param({"table": "a/b"}, 400, id="slash-in-table"),
    pytest.param({"table": "x" * 129}, 400, id="long-table"),
    pytest.param({"table": "tab\tle"}, 400, id="control-in-table"),
])
def test_without_tenants_cnosdb_headers_address_only_existing_databases_and_valid_tables(
        untenanted: RunningServer, headers: dict[str, str], status: int) -> None:
    trace_id = os.urandom(16)
    assert cnosdb_write(untenanted, headers, "addressed", trace_id).status_code == status
    assert http_get(untenanted, None, "/api/services", headers=headers).status_code == status
    assert v1_trace(untenanted, None, trace_id) == []


def test_the_tables_headers_may_address_are_bounded(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_server(server_config(tmp_path_factory.mktemp("max_tables"), max_tables=2)) as server:
        for table in ("t1", "t2", "t1"):
            assert cnosdb_write(server, {"table": table}, "svc", os.urandom(16)).status_code == 200
        refused = cnosdb_write(server, {"table": "t3"}, "svc", os.urandom(16))
        assert refused.status_code == 403
        assert "--max-tables" in status_pb2.Status.FromString(refused.content).message
        assert cnosdb_write(server, {}, "svc", os.urandom(16)).status_code == 200  # the configured table
