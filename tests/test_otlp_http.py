"""The OTLP/HTTP receiver (`POST /v1/traces`, `POST /api/v1/traces`) through real clients.

Spans go in through OpenTelemetry's own OTLP/HTTP exporter (or `requests` where a test needs a body no
exporter sends) and come back out through the Jaeger v1 and v2 gRPC APIs of the same running server.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence

import grpc
import pytest
import requests
import zstandard
from conftest import canonical_jaeger_span, sort_key_values
from google.protobuf import json_format
from google.rpc import status_pb2
from harness import RunningServer, running_server, server_config
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from cnosdb_jaeger_storage.proto import (
    model_pb2,
    storage_v1_grpc,
    trace_pb2,
    trace_service_pb2,
    trace_storage_grpc,
    trace_storage_pb2,
)
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as v1

PROTOBUF, JSON = "application/x-protobuf", "application/json"
HOUR_NS = 3600 * 10**9


# --- clients ---------------------------------------------------------------------------------------


def sdk_provider(endpoint: str, resource: Resource, *, batch: bool = False, **exporter_args: object
                 ) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A TracerProvider exporting to `endpoint` with the SDK's OTLP/HTTP exporter, and a copy of every span."""
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=endpoint, **exporter_args)  # type: ignore[arg-type]
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    sent = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(sent))
    return provider, sent


def otlp_request(service: str, *spans: trace_pb2.Span, scope: str = "tests"
                 ) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = service
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    ss.spans.extend(spans)
    return request


def otlp_span(name: str = "op", *, start: int | None = None, trace_id: bytes | None = None,
              attributes: dict[str, str] | None = None) -> trace_pb2.Span:
    start = time.time_ns() - 60 * 10**9 if start is None else start
    span = trace_pb2.Span(trace_id=trace_id or os.urandom(16), span_id=os.urandom(8), name=name,
                          kind=trace_pb2.Span.SPAN_KIND_SERVER, start_time_unix_nano=start,
                          end_time_unix_nano=start + 1500)
    for key, value in (attributes or {}).items():
        span.attributes.add(key=key).value.string_value = value
    return span


def otlp_json(request: trace_service_pb2.ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: protobuf's JSON mapping, except that trace and span IDs are hex."""
    payload = json_format.MessageToDict(request)
    for rs in payload.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for item in (span, *span.get("links", ())):
                    for name in ("traceId", "spanId", "parentSpanId"):
                        if name in item:
                            item[name] = base64.b64decode(item[name]).hex()
    return json.dumps(payload).encode()


def post(url: str, body: bytes, content_type: str = PROTOBUF, **headers: str) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": content_type, **headers}, timeout=30)


def rpc_status(response: requests.Response) -> tuple[int, str]:
    """The `google.rpc.Status` of an error response, read in the encoding the response declares."""
    if response.headers["Content-Type"].startswith(JSON):
        body = response.json()
        return body["code"], body["message"]
    assert response.headers["Content-Type"].startswith(PROTOBUF)
    status = status_pb2.Status.FromString(response.content)
    return status.code, status.message


def v1_trace(server: RunningServer, trace_id: bytes) -> list[model_pb2.Span]:
    with server.channel() as channel:
        chunks = storage_v1_grpc.SpanReaderPluginStub(channel).GetTrace(v1.GetTraceRequest(trace_id=trace_id))
        return [span for chunk in chunks for span in chunk.spans]


def v1_find(server: RunningServer, service: str, tags: dict[str, str] | None = None,
            operation: str = "") -> list[model_pb2.Span]:
    now = time.time_ns()
    query = v1.TraceQueryParameters(service_name=service, operation_name=operation, tags=tags or {},
                                    num_traces=20)
    query.start_time_min.FromNanoseconds(now - 24 * HOUR_NS)
    query.start_time_max.FromNanoseconds(now + HOUR_NS)
    with server.channel() as channel:
        chunks = storage_v1_grpc.SpanReaderPluginStub(channel).FindTraces(v1.FindTracesRequest(query=query))
        return [span for chunk in chunks for span in chunk.spans]


def v2_trace(server: RunningServer, trace_id: bytes) -> list[trace_pb2.ResourceSpans]:
    with server.channel() as channel:
        chunks = trace_storage_grpc.TraceReaderStub(channel).GetTraces(
            trace_storage_pb2.GetTracesRequest(query=[trace_storage_pb2.GetTraceParams(trace_id=trace_id)]))
        return [rs for chunk in chunks for rs in chunk.resource_spans]


def v2_find(server: RunningServer, service: str, attributes: Sequence[tuple[str, dict[str, object]]]
            ) -> list[trace_pb2.ResourceSpans]:
    """FindTraces with typed attributes, each given as (key, AnyValue fields)."""
    query = trace_storage_pb2.TraceQueryParameters(service_name=service, search_depth=20)
    for key, value in attributes:
        query.attributes.add(key=key, value=trace_storage_pb2.AnyValue(**value))
    with server.channel() as channel:
        chunks = trace_storage_grpc.TraceReaderStub(channel).FindTraces(
            trace_storage_pb2.FindTracesRequest(query=query))
        return [rs for chunk in chunks for rs in chunk.resource_spans]


def metric_value(server: RunningServer, name: str, **labels: str) -> float:
    text = requests.get(server.url("admin") + "/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name and ",".join(sorted((match.group(2) or "").split(","))) == wanted:
            return float(match.group(3))
    return 0.0


# --- comparison --------------------------------------------------------------------------------------


def otlp_spans(resource_spans: Iterable[trace_pb2.ResourceSpans]) -> list[tuple[str, str, str]]:
    """(resource, scope, span) of every span, attributes in key order (OTLP attributes form a map)."""
    out = []
    for rs in resource_spans:
        resource = type(rs.resource)()
        resource.CopyFrom(rs.resource)
        sort_key_values(resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                copy = trace_pb2.Span()
                copy.CopyFrom(span)
                if copy.status == trace_pb2.Status():  # the SDK sends an empty status for "unset"
                    copy.ClearField("status")
                for repeated in (copy.attributes, *(e.attributes for e in copy.events),
                                 *(link.attributes for link in copy.links)):
                    sort_key_values(repeated)
                out.append((str(resource), str(ss.scope), str(copy)))
    return sorted(out)


def jaeger_normalized(spans: Iterable[model_pb2.Span]) -> list[model_pb2.Span]:
    return sorted((canonical_jaeger_span(span) for span in spans), key=lambda s: s.span_id)


def s(key: str, value: str) -> model_pb2.KeyValue:
    return model_pb2.KeyValue(key=key, v_type=model_pb2.STRING, v_str=value)


def b(key: str, value: bool) -> model_pb2.KeyValue:
    return model_pb2.KeyValue(key=key, v_type=model_pb2.BOOL, v_bool=value)


def i(key: str, value: int) -> model_pb2.KeyValue:
    return model_pb2.KeyValue(key=key, v_type=model_pb2.INT64, v_int64=value)


def f(key: str, value: float) -> model_pb2.KeyValue:
    return model_pb2.KeyValue(key=key, v_type=model_pb2.FLOAT64, v_float64=value)


# --- servers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("otlp_http"))) as running:
        yield running


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("small"), max_request_bytes=4096)) as running:
        yield running


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("auth"), receiver_user="otel",
                                      receiver_password="s3cret:pa ss")) as running:
        yield running


# --- the SDK's exporter ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_trace(server: RunningServer) -> tuple[int, trace_service_pb2.ExportTraceServiceRequest]:
    """One trace of five spans of every kind, two scopes, typed attributes, events, links and statuses,
    exported by the SDK; returns its start time and the OTLP request the exporter sent."""
    t0 = (time.time_ns() - HOUR_NS) // 1000 * 1000 + 123  # nanoseconds that are not whole microseconds
    resource = Resource({"service.name": "shop-frontend", "host.name": "web-1", "host.cores": 8,
                         "cpu.ratio": 0.75, "canary": True, "regions": ("eu", "us")})
    provider, sent = sdk_provider(server.url("otlp_http") + "/v1/traces", resource)
    web = provider.get_tracer("shop.instrumentation", "1.4.2")
    db = provider.get_tracer("shop.db", "0.9")
    elsewhere = SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0x00F067AA0BA902B7,
                            is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))

    root = web.start_span("GET /cart", kind=SpanKind.SERVER, start_time=t0, attributes={
        "http.method": "GET", "http.status_code": 200, "http.ok": True, "load": 0.25,
        "tags": ["a", "b"], "sizes": [1, 2, 3]})
    root.add_event("cache miss", {"cache.key": "cart:42", "retry": False, "attempt": 2}, timestamp=t0 + 1000)
    root.set_status(Status(StatusCode.OK))
    parent = otel_trace.set_span_in_context(root)
    query = db.start_span("SELECT cart", context=parent, kind=SpanKind.CLIENT, start_time=t0 + 2000,
                          links=[Link(elsewhere, {"link.reason": "retry-of"})],
                          attributes={"db.system": "postgresql"})
    query.set_status(Status(StatusCode.ERROR, "connection reset"))
    query.end(end_time=t0 + 5000)
    for n, (name, kind) in enumerate([("publish cart", SpanKind.PRODUCER), ("consume cart", SpanKind.CONSUMER),
                                      ("render", SpanKind.INTERNAL)]):
        web.start_span(name, context=parent, kind=kind, start_time=t0 + 6000 + n * 1000).end(t0 + 6500 + n * 1000)
    root.end(end_time=t0 + 10_000_000)
    assert provider.force_flush()
    request = encode_spans(sent.get_finished_spans())
    provider.shutdown()
    return t0, request


def _trace_id(request: trace_service_pb2.ExportTraceServiceRequest) -> bytes:
    return request.resource_spans[0].scope_spans[0].spans[0].trace_id


def _expected_jaeger(t0: int, request: trace_service_pb2.ExportTraceServiceRequest) -> list[model_pb2.Span]:
    spans = {span.name: span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans}
    root = spans["GET /cart"]
    process = model_pb2.Process(service_name="shop-frontend", tags=[
        s("host.name", "web-1"), i("host.cores", 8), f("cpu.ratio", 0.75), b("canary", True),
        s("regions", '["eu","us"]')])
    web_scope = [s("otel.scope.name", "shop.instrumentation"), s("otel.scope.version", "1.4.2")]
    child_of_root = [model_pb2.SpanRef(trace_id=root.trace_id, span_id=root.span_id,
                                       ref_type=model_pb2.CHILD_OF)]

    def jaeger(name: str, start: int, end: int, tags: list[model_pb2.KeyValue],
               references: list[model_pb2.SpanRef], logs: Sequence[model_pb2.Log] = ()) -> model_pb2.Span:
        span = model_pb2.Span(trace_id=root.trace_id, span_id=spans[name].span_id, operation_name=name,
                              references=references, flags=spans[name].flags, tags=tags, logs=logs,
                              process=process)
        span.start_time.FromNanoseconds(start)
        span.duration.FromNanoseconds(end - start)
        return span

    cache_miss = model_pb2.Log(fields=[s("cache.key", "cart:42"), b("retry", False), i("attempt", 2),
                                       s("event", "cache miss")])
    cache_miss.timestamp.FromNanoseconds(t0 + 1000)
    return jaeger_normalized([
        jaeger("GET /cart", t0, t0 + 10_000_000, [
            s("http.method", "GET"), i("http.status_code", 200), b("http.ok", True), f("load", 0.25),
            s("tags", '["a","b"]'), s("sizes", "[1,2,3]"),
            s("span.kind", "server"), s("otel.status_code", "OK"), *web_scope], [], [cache_miss]),
        jaeger("SELECT cart", t0 + 2000, t0 + 5000, [
            s("db.system", "postgresql"), s("span.kind", "client"), b("error", True),
            s("otel.status_code", "ERROR"), s("otel.status_description", "connection reset"),
            s("otel.scope.name", "shop.db"), s("otel.scope.version", "0.9")],
            [*child_of_root, model_pb2.SpanRef(trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
                                               span_id=bytes.fromhex("00f067aa0ba902b7"),
                                               ref_type=model_pb2.FOLLOWS_FROM)]),
        jaeger("publish cart", t0 + 6000, t0 + 6500, [s("span.kind", "producer"), *web_scope], child_of_root),
        jaeger("consume cart", t0 + 7000, t0 + 7500, [s("span.kind", "consumer"), *web_scope], child_of_root),
        jaeger("render", t0 + 8000, t0 + 8500, [s("span.kind", "internal"), *web_scope], child_of_root),
    ])


def test_sdk_export_reads_back_exactly_through_v1_get_trace(server: RunningServer, sdk_trace) -> None:
    t0, request = sdk_trace
    got = jaeger_normalized(v1_trace(server, _trace_id(request)))
    assert got == _expected_jaeger(t0, request)


def test_sdk_export_is_found_through_v1_find_traces(server: RunningServer, sdk_trace) -> None:
    t0, request = sdk_trace
    found = v1_find(server, "shop-frontend", {"http.status_code": "200", "http.ok": "true"}, "GET /cart")
    assert jaeger_normalized(found) == _expected_jaeger(t0, request)
    assert v1_find(server, "shop-frontend", {"http.status_code": "404"}) == []
    assert len(v1_find(server, "shop-frontend", {"db.system": "postgresql", "error": "true"})) == 5


def test_sdk_export_services_and_operations(server: RunningServer, sdk_trace) -> None:
    with server.channel() as channel:
        stub = storage_v1_grpc.SpanReaderPluginStub(channel)
        services = stub.GetServices(v1.GetServicesRequest()).services
        operations = stub.GetOperations(v1.GetOperationsRequest(service="shop-frontend")).operations
    assert "shop-frontend" in services
    assert sorted((o.name, o.span_kind) for o in operations) == [
        ("GET /cart", "server"), ("SELECT cart", "client"), ("consume cart", "consumer"),
        ("publish cart", "producer"), ("render", "internal")]


def test_sdk_export_reads_back_exactly_through_v2_get_traces(server: RunningServer, sdk_trace) -> None:
    _, request = sdk_trace
    assert otlp_spans(v2_trace(server, _trace_id(request))) == otlp_spans(request.resource_spans)


@pytest.mark.parametrize("attribute", [
    ("http.status_code", {"int_value": 200}),
    ("http.ok", {"bool_value": True}),
    ("load", {"double_value": 0.25}),
    ("http.method", {"string_value": "GET"}),
], ids=["int", "bool", "double", "string"])
def test_sdk_export_is_found_through_v2_typed_attributes(server: RunningServer, sdk_trace,
                                                         attribute: tuple[str, dict[str, object]]) -> None:
    _, request = sdk_trace
    assert otlp_spans(v2_find(server, "shop-frontend", [attribute])) == otlp_spans(request.resource_spans)
    key, value = attribute
    wrong = {name: (not v if isinstance(v, bool) else v * 3 if not isinstance(v, str) else v + "x")
             for name, v in value.items()}
    assert v2_find(server, "shop-frontend", [(key, wrong)]) == []


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.Deflate, Compression.NoCompression],
                         ids=["gzip", "deflate", "none"])
def test_sdk_exporter_compression(server: RunningServer, compression: Compression) -> None:
    service = f"compressed-{compression.value}"
    provider, sent = sdk_provider(server.url("otlp_http") + "/v1/traces", Resource({"service.name": service}),
                                  batch=True, compression=compression)
    for n in range(20):
        provider.get_tracer("t").start_span(f"op-{n}", attributes={"n": n}).end()
    assert provider.force_flush()
    provider.shutdown()
    request = encode_spans(sent.get_finished_spans())
    trace_ids = {span.trace_id for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans}
    assert len(trace_ids) == 20
    got = [rs for trace_id in trace_ids for rs in v2_trace(server, trace_id)]
    assert otlp_spans(got) == otlp_spans(request.resource_spans)


# --- CnosDB's documented exporter ----------------------------------------------------------------------


def test_cnosdb_documented_exporter_writes_into_the_named_db_and_table(server: RunningServer) -> None:
    """CnosDB's docs export to `/api/v1/traces` with its `tenant`, `db`, `table` and Basic auth headers."""
    server.run(server.server.client.sql("CREATE DATABASE IF NOT EXISTS otel_docs", tenant="cnosdb",
                                        database="public"))
    headers = {"tenant": "cnosdb", "db": "otel_docs", "table": "docs_traces",
               "Authorization": "Basic " + base64.b64encode(b"root:").decode()}
    provider, sent = sdk_provider(server.url("otlp_http") + "/api/v1/traces", Resource({"service.name": "docs-svc"}),
                                  batch=True, headers=headers)
    tracer = provider.get_tracer("docs")
    with tracer.start_as_current_span("parent", attributes={"k": "v"}), tracer.start_as_current_span("child"):
        pass
    assert provider.force_flush()
    provider.shutdown()
    expected = {(span.context.span_id.to_bytes(8, "big").hex(), span.name) for span in sent.get_finished_spans()}

    rows = server.run(server.server.client.sql(
        'SELECT "ResourceSpans/ScopeSpans/Span/span_id" AS span_id, "ResourceSpans/ScopeSpans/Span/name" AS name, '
        '"ResourceSpans/Resource/attributes/service.name" AS service, '
        '"ResourceSpans/ScopeSpans/Span/attributes/k" AS k FROM docs_traces', tenant="cnosdb", database="otel_docs"))
    assert {(r["span_id"], r["name"]) for r in rows} == expected
    assert {r["service"] for r in rows} == {"docs-svc"}
    assert sorted(r.get("k") for r in rows if r["name"] == "parent") == ["v"]
    assert "docs-svc" not in v1_services(server)  # the configured table holds none of them


def v1_services(server: RunningServer) -> list[str]:
    with server.channel() as channel:
        return list(storage_v1_grpc.SpanReaderPluginStub(channel).GetServices(v1.GetServicesRequest()).services)


# --- encodings ---------------------------------------------------------------------------------------


def _compress(encoding: str, body: bytes) -> bytes:
    return {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": zstandard.ZstdCompressor().compress,
            "identity": lambda x: x}[encoding](body)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON], ids=["protobuf", "json"])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate", "zstd"])
def test_request_encodings_are_stored_and_answered_in_kind(server: RunningServer, content_type: str,
                                                           encoding: str) -> None:
    span = otlp_span("encoded", attributes={"encoding": encoding})
    parent = otlp_span("encoded-parent", trace_id=span.trace_id)
    span.parent_span_id = parent.span_id
    span.links.add(trace_id=os.urandom(16), span_id=os.urandom(8))
    request = otlp_request(f"enc-{content_type}-{encoding}", span, parent)
    body = request.SerializeToString() if content_type == PROTOBUF else otlp_json(request)
    response = post(server.url("otlp_http") + "/v1/traces", _compress(encoding, body), content_type,
                    **({} if encoding == "identity" else {"Content-Encoding": encoding}))
    assert response.status_code == 200, response.content
    assert response.headers["Content-Type"].startswith(content_type)
    if content_type == JSON:
        assert response.json() == {}
    else:
        assert trace_service_pb2.ExportTraceServiceResponse.FromString(response.content) == \
            trace_service_pb2.ExportTraceServiceResponse()
    assert otlp_spans(v2_trace(server, span.trace_id)) == otlp_spans(request.resource_spans)


def test_json_with_enum_names_and_string_numbers(server: RunningServer) -> None:
    """OTLP/JSON as the collector writes it: hex IDs, enum names, 64-bit integers as strings."""
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    start = time.time_ns() - HOUR_NS
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "json-native"}}]},
        "scopeSpans": [{"scope": {"name": "s"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "parentSpanId": "", "name": "json-op",
            "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 2000),
            "attributes": [{"key": "n", "value": {"intValue": "9007199254740993"}},
                           {"key": "d", "value": {"doubleValue": 2.5}}],
            "status": {"code": "STATUS_CODE_ERROR", "message": "bad"}}]}]}]}
    response = post(server.url("otlp_http") + "/v1/traces", json.dumps(body).encode(), JSON)
    assert response.status_code == 200, response.content
    [rs] = v2_trace(server, bytes.fromhex(trace_id))
    [span] = rs.scope_spans[0].spans
    assert (span.span_id.hex(), span.kind, span.start_time_unix_nano, span.end_time_unix_nano) == (
        span_id, trace_pb2.Span.SPAN_KIND_CLIENT, start, start + 2000)
    assert sorted((kv.key, kv.value.WhichOneof("value"), getattr(kv.value, kv.value.WhichOneof("value")))
                  for kv in span.attributes) == [("d", "double_value", 2.5), ("n", "int_value", 9007199254740993)]
    assert (span.status.code, span.status.message) == (trace_pb2.Status.STATUS_CODE_ERROR, "bad")


# --- errors ------------------------------------------------------------------------------------------

MALFORMED = [
    pytest.param(PROTOBUF, b"\xff\xff\xff\xff", id="protobuf-garbage"),
    pytest.param(PROTOBUF, b"\x0a\x05\x0a\x03", id="protobuf-truncated"),
    pytest.param(JSON, b"{\"resourceSpans\": [", id="json-truncated"),
    pytest.param(JSON, b"\xff\xfe", id="json-not-utf8"),
    pytest.param(JSON, b"[1, 2]", id="json-array"),
    pytest.param(JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', id="json-bad-hex"),
    pytest.param(JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": {"a": 1}}]}]}]}',
                 id="json-wrong-field-type"),
    pytest.param(JSON, b'{"resourceSpans": 5}', id="json-wrong-type"),
]


@pytest.mark.parametrize(("content_type", "body"), MALFORMED)
def test_malformed_body_is_400_in_the_request_encoding(server: RunningServer, content_type: str,
                                                       body: bytes) -> None:
    response = post(server.url("otlp_http") + "/v1/traces", body, content_type)
    assert response.status_code == 400
    code, message = rpc_status(response)
    assert response.headers["Content-Type"].startswith(content_type)
    assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "malformed" in message or "not hex" in message


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_corrupt_compressed_body_is_400(server: RunningServer, encoding: str) -> None:
    body = _compress(encoding, otlp_request("corrupt", otlp_span()).SerializeToString())
    response = post(server.url("otlp_http") + "/v1/traces", body[: len(body) // 2], PROTOBUF,
                    **{"Content-Encoding": encoding})
    assert response.status_code == 400
    assert f"not valid {encoding}" in rpc_status(response)[1]


def test_unknown_content_encoding_is_415(server: RunningServer) -> None:
    response = post(server.url("otlp_http") + "/v1/traces", b"x", PROTOBUF, **{"Content-Encoding": "br"})
    assert response.status_code == 415
    assert "Content-Encoding 'br'" in rpc_status(response)[1]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/protobuf"])
def test_unknown_content_type_is_415(server: RunningServer, content_type: str) -> None:
    response = post(server.url("otlp_http") + "/v1/traces", otlp_request("x", otlp_span()).SerializeToString(),
                    content_type)
    assert response.status_code == 415
    _, message = rpc_status(response)  # answered in protobuf, the default encoding
    assert f"unsupported Content-Type {content_type!r}" == message.split(";")[0]


def test_content_type_parameters_are_accepted(server: RunningServer) -> None:
    span = otlp_span("charset")
    response = post(server.url("otlp_http") + "/v1/traces", otlp_json(otlp_request("charset-svc", span)),
                    "application/json; charset=utf-8")
    assert response.status_code == 200
    assert len(v2_trace(server, span.trace_id)) == 1


def test_get_is_not_allowed(server: RunningServer) -> None:
    assert requests.get(server.url("otlp_http") + "/v1/traces", timeout=10).status_code == 405


def _padded_request(service: str, size: int) -> tuple[trace_pb2.Span, bytes]:
    span = otlp_span("big", attributes={"pad": "x" * size})
    return span, otlp_request(service, span).SerializeToString()


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON], ids=["protobuf", "json"])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate", "zstd"])
def test_oversized_body_is_413(small_server: RunningServer, content_type: str, encoding: str) -> None:
    span, body = _padded_request("too-big", 20_000)
    if content_type == JSON:
        body = otlp_json(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
    response = post(small_server.url("otlp_http") + "/v1/traces", _compress(encoding, body), content_type,
                    **({} if encoding == "identity" else {"Content-Encoding": encoding}))
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith(content_type)
    assert "larger than 4096 bytes" in rpc_status(response)[1]
    assert v2_trace(small_server, span.trace_id) == []


@pytest.mark.parametrize(("encoding", "size"), [("gzip", 3_000_000), ("deflate", 3_000_000), ("zstd", 100_000_000)])
def test_compression_bomb_is_413(small_server: RunningServer, encoding: str, size: int) -> None:
    bomb = _compress(encoding, b"\0" * size)
    assert len(bomb) <= 4096  # passes the limit on the wire; only its decompression exceeds it
    response = post(small_server.url("otlp_http") + "/v1/traces", bomb, PROTOBUF, **{"Content-Encoding": encoding})
    assert response.status_code == 413
    assert rpc_status(response)[1] == "decompressed request body larger than 4096 bytes"


def test_body_at_the_limit_is_accepted(small_server: RunningServer) -> None:
    span, body = _padded_request("at-limit", 3500)
    span.attributes[0].value.string_value += "x" * (4096 - len(body))
    body = otlp_request("at-limit", span).SerializeToString()
    assert len(body) == 4096
    assert post(small_server.url("otlp_http") + "/v1/traces", gzip.compress(body), PROTOBUF,
                **{"Content-Encoding": "gzip"}).status_code == 200
    assert len(v2_trace(small_server, span.trace_id)) == 1


def test_a_bad_request_loses_nothing_else(small_server: RunningServer) -> None:
    before, after = otlp_span("before"), otlp_span("after")
    url = small_server.url("otlp_http") + "/v1/traces"
    assert post(url, otlp_request("neighbours", before).SerializeToString()).status_code == 200
    assert post(url, b"\xff\xff", PROTOBUF).status_code == 400
    assert post(url, _padded_request("neighbours", 20_000)[1]).status_code == 413
    assert post(url, gzip.compress(b"\0" * 10_000_000), PROTOBUF, **{"Content-Encoding": "gzip"}).status_code == 413
    assert post(url, otlp_request("neighbours", after).SerializeToString()).status_code == 200
    assert [len(v2_trace(small_server, s.trace_id)) for s in (before, after)] == [1, 1]
    assert {s.operation_name for s in v1_find(small_server, "neighbours")} == {"before", "after"}


BASIC = "Basic " + base64.b64encode(b"otel:s3cret:pa ss").decode()


@pytest.mark.parametrize("authorization", [
    None, "", "Basic " + base64.b64encode(b"otel:wrong").decode(), "Basic " + base64.b64encode(b"root:").decode(),
    "Basic " + base64.b64encode(b"otel").decode(), "Basic !!!notbase64", "Bearer " + BASIC.split()[1],
    "Basic " + base64.b64encode(b"otel:s3cret:pa s").decode(),
], ids=["missing", "empty", "wrong-password", "wrong-user", "no-colon", "not-base64", "bearer", "prefix"])
@pytest.mark.parametrize("path", ["/v1/traces", "/api/v1/traces"])
def test_bad_credentials_are_401(auth_server: RunningServer, authorization: str | None, path: str) -> None:
    span = otlp_span("unauthorized")
    headers = {} if authorization is None else {"Authorization": authorization}
    response = post(auth_server.url("otlp_http") + path, otlp_json(otlp_request("auth", span)), JSON, **headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert rpc_status(response) == (grpc.StatusCode.UNAUTHENTICATED.value[0], "invalid or missing Basic credentials")
    assert v2_trace(auth_server, span.trace_id) == []


def test_good_credentials_are_accepted(auth_server: RunningServer) -> None:
    provider, sent = sdk_provider(auth_server.url("otlp_http") + "/v1/traces", Resource({"service.name": "auth"}),
                                  headers={"Authorization": BASIC})
    provider.get_tracer("t").start_span("authorized").end()
    assert provider.force_flush()
    provider.shutdown()
    [span] = sent.get_finished_spans()
    assert len(v2_trace(auth_server, span.context.trace_id.to_bytes(16, "big"))) == 1


# --- partial success ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ttl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("ttl"), ttl="1d")) as running:
        yield running


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON], ids=["protobuf", "json"])
def test_spans_older_than_the_ttl_are_reported_as_partial_success(ttl_server: RunningServer,
                                                                  content_type: str) -> None:
    now = time.time_ns()
    old = otlp_span("too-old", start=now - 3 * 24 * HOUR_NS)
    fresh = [otlp_span("fresh", start=now - HOUR_NS), otlp_span("fresh", start=now - 2 * HOUR_NS)]
    request = otlp_request(f"ttl-{content_type}", fresh[0], old, fresh[1])
    body = request.SerializeToString() if content_type == PROTOBUF else otlp_json(request)
    rejected_before = metric_value(ttl_server, "cnosdb_jaeger_spans_rejected_total", reason="older_than_ttl")

    response = post(ttl_server.url("otlp_http") + "/v1/traces", body, content_type)

    assert response.status_code == 200
    if content_type == JSON:
        partial = response.json()["partialSuccess"]
        rejected, message = int(partial["rejectedSpans"]), partial["errorMessage"]
    else:
        partial = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content).partial_success
        rejected, message = partial.rejected_spans, partial.error_message
    assert rejected == 1
    assert "older than" in message
    assert metric_value(ttl_server, "cnosdb_jaeger_spans_rejected_total",
                        reason="older_than_ttl") == rejected_before + 1
    assert v2_trace(ttl_server, old.trace_id) == []
    for span in fresh:
        assert otlp_spans(v2_trace(ttl_server, span.trace_id)) == otlp_spans(
            otlp_request(f"ttl-{content_type}", span).resource_spans)


# --- hostile names -----------------------------------------------------------------------------------

HOSTILE = {
    "double-quotes": 'say "hi"',
    "single-quotes": "it's 'quoted'",
    "backslash": "back\\slash",
    "trailing-backslash": "ends with\\",
    "only-backslashes": "\\\\",
    "escaped-quote-lookalike": "\\'",
    "escaped-dquote-lookalike": '\\"',
    "escaped-n-lookalike": "\\n",
    "newline": "two\nlines",
    "crlf": "crlf\r\nend",
    "carriage-return": "cr\rend",
    "tab": "tab\there",
    "comma-equals-space": "a,b=c d",
    "hash": "#not a comment",
    "leading-trailing-spaces": "  padded  ",
    "unicode": "ünïcødé 服务 🚀",
    "sql-string": "x' OR '1'='1",
    "sql-drop": "'; DROP TABLE jaeger_spans; --",
    "sql-identifier": '"; DROP DATABASE jaeger; --',
    "slashes": "ResourceSpans/ScopeSpans/Span/name",
    "percent-underscore": "100%_like_",
}


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, bytes]]]:
    """Every hostile string as a service name, a span name, an attribute key and (prefixed) its value."""
    with running_server(server_config(tmp_path_factory.mktemp("hostile"))) as running:
        request = trace_service_pb2.ExportTraceServiceRequest()
        trace_ids = {}
        for name, text in HOSTILE.items():
            span = otlp_span(text, attributes={text: "v:" + text, "plain": text})
            trace_ids[name] = span.trace_id
            request.resource_spans.extend(otlp_request(text, span).resource_spans)
        assert post(running.url("otlp_http") + "/v1/traces", request.SerializeToString()).status_code == 200
        yield running, trace_ids


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_stored_verbatim(hostile_server, name: str) -> None:
    server, trace_ids = hostile_server
    text = HOSTILE[name]
    assert text in v1_services(server)
    with server.channel() as channel:
        operations = storage_v1_grpc.SpanReaderPluginStub(channel).GetOperations(
            v1.GetOperationsRequest(service=text))
    assert list(operations.operationNames) == [text]
    [rs] = v2_trace(server, trace_ids[name])
    assert rs.resource.attributes[0].value.string_value == text
    [span] = rs.scope_spans[0].spans
    assert span.name == text
    assert sorted((kv.key, kv.value.string_value) for kv in span.attributes) == sorted(
        [(text, "v:" + text), ("plain", text)])


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_tag_filters_find_exactly_their_trace(hostile_server, name: str) -> None:
    server, trace_ids = hostile_server
    text = HOSTILE[name]
    found = v1_find(server, text, {text: "v:" + text}, operation=text)
    assert [(span.trace_id, span.operation_name, span.process.service_name) for span in found] == [
        (trace_ids[name], text, text)]
    assert v1_find(server, text, {"plain": text}) == found
    assert v1_find(server, text, {text: text}) == []
    others = [t for n, t in HOSTILE.items() if n != name]
    assert [span.trace_id for span in v1_find(server, text, {"plain": others[0]})] == []


def test_metrics_include_the_process(server: RunningServer) -> None:
    assert metric_value(server, "process_resident_memory_bytes") > 10 * 2**20
    assert metric_value(server, "process_cpu_seconds_total") > 0


def test_spans_written_counts_spans_not_the_operation_points_written_with_them(server: RunningServer) -> None:
    before = metric_value(server, "cnosdb_jaeger_spans_written_total")
    service = f"counted-{uuid.uuid4().hex[:8]}"  # new operations, so operation points are written too
    request = otlp_request(service, *(otlp_span(f"op-{i}") for i in range(5)))
    assert post(server.url("otlp_http") + "/v1/traces", request.SerializeToString()).status_code == 200
    assert metric_value(server, "cnosdb_jaeger_spans_written_total") - before == 5
