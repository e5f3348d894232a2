"""Property-based fuzzing of every way in, through real sockets: the OTLP/HTTP decode path, the query HTTP
API's parameters and the gRPC requests (random bytes, and valid messages with random field values).

Property: every input is answered with 2xx or 4xx (gRPC: OK or a code other than INTERNAL and UNKNOWN), and
a span written before the fuzzing reads back unchanged afterwards (nothing a client sent corrupted the
table). `make test` runs a few examples per test (FUZZ_EXAMPLES, default 25); `make fuzz` runs thousands.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import zlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
import zstandard
from harness import RunningServer, running_server, server_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_otlp_http import JSON, PROTOBUF, otlp_json, otlp_request, otlp_span

from cnosdb_jaeger_storage.proto import (
    dependency_storage_pb2,
    model_pb2,
    storage_v1_pb2,
    trace_pb2,
    trace_service_pb2,
    trace_storage_pb2,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
BAD_GRPC_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
HOUR_NS = 3600 * 10**9
NOW = time.time_ns()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(server_config(tmp_path_factory.mktemp("fuzz"), query_http_addr="127.0.0.1:0")) as s:
        yield s


@pytest.fixture(scope="module")
def known_good(server: RunningServer) -> Iterator[model_pb2.Span]:
    """A span written before any fuzzing; it must read back the same after every fuzz test."""
    span = otlp_span("known good", attributes={"http.method": "GET", "key with spaces": "v\\1"})
    response = requests.post(server.url("otlp_http") + "/v1/traces", data=otlp_request("fuzz-good", span)
                             .SerializeToString(), headers={"Content-Type": PROTOBUF}, timeout=30)
    assert response.status_code == 200, response.content
    before = _read_v1(server, span.trace_id)
    yield span
    assert _read_v1(server, span.trace_id) == before
    with server.channel() as channel:
        services = _v1_stub(channel, "SpanReaderPlugin").GetServices(storage_v1_pb2.GetServicesRequest()).services
    assert "fuzz-good" in services


def _read_v1(server: RunningServer, trace_id: bytes) -> list[bytes]:
    with server.channel() as channel:
        chunks = _v1_stub(channel, "SpanReaderPlugin").GetTrace(storage_v1_pb2.GetTraceRequest(trace_id=trace_id))
        return sorted(span.SerializeToString(deterministic=True) for c in chunks for span in c.spans)


def _v1_stub(channel: grpc.Channel, service: str) -> Any:
    from cnosdb_jaeger_storage.proto import storage_v1_grpc
    return getattr(storage_v1_grpc, f"{service}Stub")(channel)


# --- strategies -----------------------------------------------------------------------------------

# Text with what breaks names most often: control characters, backslashes, quotes, separators.
HOSTILE_CHARS = st.sampled_from(["\x00", "\x01", "\x1f", "\x7f", "\n", "\r", "\t", "\\", "'", '"', ",", " ", "=",
                                 "x", "5c", "#", "/", "é", "\u2028", "🚀"])
names = st.one_of(st.text(max_size=12), st.lists(HOSTILE_CHARS, max_size=8).map("".join))
times = st.one_of(st.integers(0, 2**64 - 1), st.integers(NOW - 48 * HOUR_NS, NOW + HOUR_NS),
                  st.sampled_from([0, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1]))
ids = st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20))


@st.composite
def any_values(draw: st.DrawFn, depth: int = 2) -> Any:
    kind = draw(st.sampled_from(["string", "bool", "int", "double", "bytes", "array", "kvlist", "unset"]))
    value = trace_pb2.Span().attributes.add().value
    if kind == "string":
        value.string_value = draw(names)
    elif kind == "bool":
        value.bool_value = draw(st.booleans())
    elif kind == "int":
        value.int_value = draw(st.integers(-(2**63), 2**63 - 1))
    elif kind == "double":
        value.double_value = draw(st.floats())
    elif kind == "bytes":
        value.bytes_value = draw(st.binary(max_size=8))
    elif kind in ("array", "kvlist") and depth:
        items = draw(st.lists(any_values(depth - 1), max_size=3))
        for item in items:
            if kind == "array":
                value.array_value.values.add().CopyFrom(item)
            else:
                value.kvlist_value.values.add(key=draw(names)).value.CopyFrom(item)
    return value


@st.composite
def attributes(draw: st.DrawFn) -> list[tuple[str, Any]]:
    return draw(st.lists(st.tuples(names, any_values()), max_size=4))


def _add_attributes(target: Any, pairs: list[tuple[str, Any]]) -> None:
    for key, value in pairs:
        target.add(key=key).value.CopyFrom(value)


@st.composite
def otlp_spans(draw: st.DrawFn) -> trace_pb2.Span:
    span = trace_pb2.Span(trace_id=draw(ids), span_id=draw(st.binary(max_size=10)),
                          parent_span_id=draw(st.binary(max_size=10)), name=draw(names),
                          trace_state=draw(names), kind=draw(st.integers(0, 7)),
                          start_time_unix_nano=draw(times), end_time_unix_nano=draw(times),
                          flags=draw(st.integers(0, 2**32 - 1)),
                          dropped_attributes_count=draw(st.integers(0, 2**32 - 1)))
    span.status.code = draw(st.integers(0, 3))
    span.status.message = draw(names)
    _add_attributes(span.attributes, draw(attributes()))
    for _ in range(draw(st.integers(0, 2))):
        event = span.events.add(time_unix_nano=draw(times), name=draw(names))
        _add_attributes(event.attributes, draw(attributes()))
    for _ in range(draw(st.integers(0, 2))):
        link = span.links.add(trace_id=draw(ids), span_id=draw(st.binary(max_size=10)), trace_state=draw(names))
        _add_attributes(link.attributes, draw(attributes()))
    return span


@st.composite
def export_requests(draw: st.DrawFn) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rs = request.resource_spans.add(schema_url=draw(names))
        _add_attributes(rs.resource.attributes, draw(attributes()))
        if draw(st.booleans()):
            rs.resource.attributes.add(key="service.name").value.string_value = draw(names)
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = draw(names), draw(names)
        ss.spans.extend(draw(st.lists(otlp_spans(), max_size=3)))
    return request


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """Flip, insert, delete or truncate a few bytes of a valid body."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(out) - 1)))
        if op == "flip" and out:
            out[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and out:
            del out[at]
        elif op == "truncate":
            del out[at:]
    return bytes(out)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId",
                                                "name", "attributes", "value", "startTimeUnixNano", "x"]),
                               inner, max_size=3), max_leaves=12)


@st.composite
def otlp_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """(body, content type): valid, mutated or random protobuf and JSON, under random content types."""
    request = draw(export_requests())
    source = draw(st.sampled_from(["protobuf", "json", "mutated-protobuf", "mutated-json", "random", "json-value"]))
    if source == "protobuf":
        body, content_type = request.SerializeToString(), PROTOBUF
    elif source == "json":
        body, content_type = otlp_json(request), JSON
    elif source == "mutated-protobuf":
        body, content_type = _mutate(request.SerializeToString(), draw), PROTOBUF
    elif source == "mutated-json":
        body, content_type = _mutate(otlp_json(request), draw), JSON
    elif source == "random":
        body, content_type = draw(st.binary(max_size=300)), draw(st.sampled_from([PROTOBUF, JSON]))
    else:
        body, content_type = json.dumps(draw(json_values)).encode(), JSON
    if draw(st.integers(0, 9)) == 0:
        content_type = draw(st.sampled_from(["text/plain", "", "application/json; charset=latin-1",
                                             "application/x-protobuf; x=y", "multipart/form-data", "*/*"]))
    return body, content_type


ENCODINGS = {"identity": lambda b: b, "gzip": gzip.compress, "deflate": zlib.compress,
             "zstd": lambda b: zstandard.ZstdCompressor().compress(b)}


# --- OTLP/HTTP -------------------------------------------------------------------------------------


@FUZZ
@given(body=otlp_bodies(), encoding=st.sampled_from([None, *ENCODINGS, "br", "gzip, deflate", "x-unknown"]),
       corrupt=st.booleans(), path=st.sampled_from(["/v1/traces", "/api/v1/traces"]))
def test_otlp_http_answers_every_body_with_2xx_or_4xx(server, known_good, body: tuple[bytes, str],
                                                      encoding: str | None, corrupt: bool, path: str) -> None:
    data, content_type = body
    headers = {"Content-Type": content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
        if encoding in ENCODINGS:
            data = ENCODINGS[encoding](data)
            if corrupt and len(data) > 2:
                data = data[: len(data) // 2]
    response = requests.post(server.url("otlp_http") + path, data=data, headers=headers, timeout=60)
    assert response.status_code < 500, response.content


@FUZZ
@given(request=export_requests())
def test_otlp_http_spans_with_random_fields_are_stored_or_refused_and_read_back(
        server, known_good, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
    response = requests.post(server.url("otlp_http") + "/v1/traces", data=request.SerializeToString(),
                             headers={"Content-Type": PROTOBUF}, timeout=60)
    assert response.status_code < 500, response.content
    trace_ids = {span.trace_id for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans
                 if len(span.trace_id) == 16}
    with server.channel() as channel:
        reader = _v1_stub(channel, "SpanReaderPlugin")
        for trace_id in trace_ids:
            try:
                list(reader.GetTrace(storage_v1_pb2.GetTraceRequest(trace_id=trace_id)))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND, exc.details()


# --- query HTTP API --------------------------------------------------------------------------------

numbers = st.one_of(st.integers().map(str), st.sampled_from([str(2**63), str(-(2**63) - 1), "9" * 40, "1e9", "0x10",
                                                             "-1", "", " 1", "NaN"]))
durations = st.one_of(st.sampled_from(["1ms", "1.5h", "-1s", "1e3s", ".5us", "1µs", "9" * 30 + "h", "1d", "ms",
                                       "1m1", "", "0"]), st.text(max_size=6))
param_values = st.one_of(names, numbers, durations, st.text(max_size=20))
query_params = st.dictionaries(
    st.sampled_from(["service", "operation", "tag", "tags", "start", "end", "minDuration", "maxDuration", "limit",
                     "lookback", "traceID", "spanKind", "endTs", "prettyPrint"]), param_values, max_size=6)


@FUZZ
@given(path=st.sampled_from(["/api/services", "/api/services/{}/operations", "/api/operations", "/api/traces",
                             "/api/traces/{}", "/api/dependencies"]),
       segment=st.one_of(names, st.text(alphabet="0123456789abcdefABCDEF", max_size=34)), params=query_params,
       tags=st.one_of(st.none(), st.dictionaries(names, st.one_of(names, st.integers(), st.none()), max_size=2)))
def test_query_api_answers_every_parameter_with_2xx_or_4xx(server, known_good, path: str, segment: str,
                                                           params: dict[str, str], tags: dict[str, Any] | None
                                                           ) -> None:
    if tags is not None:
        params = {**params, "tags": json.dumps(tags)}
    url = server.url("query_http") + path.format(requests.utils.quote(segment, safe="") or "x")
    response = requests.get(url, params=params, timeout=60)
    assert response.status_code < 500, (url, params, response.text)


# --- gRPC ------------------------------------------------------------------------------------------

_SERVICES = [s for module in (storage_v1_pb2, trace_storage_pb2, dependency_storage_pb2, trace_service_pb2)
             for s in module.DESCRIPTOR.services_by_name.values()]
METHODS = [(f"/{s.full_name}/{m.name}", m.client_streaming, m.server_streaming) for s in _SERVICES for m in s.methods]


def _call_raw(channel: grpc.Channel, method: tuple[str, bool, bool], payload: bytes) -> None:
    """One call with `payload` as the serialized request (identity serializers)."""
    path, client_streaming, server_streaming = method
    if client_streaming:
        channel.stream_unary(path)(iter([payload]), timeout=60)
    elif server_streaming:
        list(channel.unary_stream(path)(payload, timeout=60))
    else:
        channel.unary_unary(path)(payload, timeout=60)


def _assert_not_internal(call: Any) -> None:
    try:
        call()
    except grpc.RpcError as exc:
        assert exc.code() not in BAD_GRPC_CODES, (exc.code(), exc.details())


@FUZZ
@given(method=st.sampled_from(METHODS), payload=st.one_of(st.binary(max_size=200), st.builds(
    lambda m: m, st.sampled_from([b"\x0a\x00", b"\x12\x02\x08\x01", b"\xff" * 12, b"\x0a\x10" + b"\x00" * 16]))))
def test_grpc_answers_random_bytes_without_internal(server, known_good, method: tuple[str, bool, bool],
                                                    payload: bytes) -> None:
    with server.channel() as channel:
        _assert_not_internal(lambda: _call_raw(channel, method, payload))


timestamps = st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-(10**9), 10**9 - 1))


def _stamp(message: Any, value: tuple[int, int]) -> None:
    message.seconds, message.nanos = value


@st.composite
def v1_queries(draw: st.DrawFn) -> storage_v1_pb2.TraceQueryParameters:
    q = storage_v1_pb2.TraceQueryParameters(service_name=draw(names), operation_name=draw(names),
                                            tags=draw(st.dictionaries(names, names, max_size=3)),
                                            num_traces=draw(st.integers(-(2**31), 2**31 - 1)))
    for field in ("start_time_min", "start_time_max", "duration_min", "duration_max"):
        if draw(st.booleans()):
            _stamp(getattr(q, field), draw(timestamps))
    return q


@st.composite
def v2_queries(draw: st.DrawFn) -> trace_storage_pb2.TraceQueryParameters:
    q = trace_storage_pb2.TraceQueryParameters(service_name=draw(names), operation_name=draw(names),
                                               search_depth=draw(st.integers(-(2**31), 2**31 - 1)))
    for key, value in draw(attributes()):
        q.attributes.add(key=key).value.ParseFromString(value.SerializeToString())
    for field in ("start_time_min", "start_time_max", "duration_min", "duration_max"):
        if draw(st.booleans()):
            _stamp(getattr(q, field), draw(timestamps))
    return q


@st.composite
def jaeger_spans(draw: st.DrawFn) -> model_pb2.Span:
    span = model_pb2.Span(trace_id=draw(ids), span_id=draw(st.binary(max_size=10)), operation_name=draw(names),
                          flags=draw(st.integers(0, 2**32 - 1)),
                          process=model_pb2.Process(service_name=draw(names)))
    _stamp(span.start_time, draw(st.one_of(timestamps, st.just((NOW // 10**9, 0)))))
    _stamp(span.duration, draw(timestamps))
    for key, value in draw(st.lists(st.tuples(names, names), max_size=3)):
        span.tags.add(key=key, v_type=draw(st.integers(0, 5)), v_str=value, v_int64=draw(st.integers(-5, 5)))
    for _ in range(draw(st.integers(0, 2))):
        log = span.logs.add()
        _stamp(log.timestamp, draw(timestamps))
        log.fields.add(key=draw(names), v_str=draw(names))
    for _ in range(draw(st.integers(0, 2))):
        span.references.add(trace_id=draw(ids), span_id=draw(st.binary(max_size=10)),
                            ref_type=draw(st.integers(0, 3)))
    return span


@st.composite
def grpc_calls(draw: st.DrawFn) -> tuple[str, bytes]:
    """(method path, serialized request) of a valid message with random field values."""
    which = draw(st.sampled_from(["v1.GetOperations", "v1.FindTraces", "v1.FindTraceIDs", "v1.GetTrace",
                                  "v1.GetDependencies", "v1.WriteSpan", "v2.GetOperations", "v2.FindTraces",
                                  "v2.FindTraceIDs", "v2.FindTraceSummaries", "v2.GetTraces",
                                  "v2.GetDependencies"]))
    v1, v2 = "/jaeger.storage.v1.SpanReaderPlugin/", "/jaeger.storage.v2.TraceReader/"
    message: Any
    if which == "v1.GetOperations":
        path, message = v1 + "GetOperations", storage_v1_pb2.GetOperationsRequest(service=draw(names),
                                                                                  span_kind=draw(names))
    elif which in ("v1.FindTraces", "v1.FindTraceIDs"):
        path = v1 + which.split(".")[1]
        message = (storage_v1_pb2.FindTracesRequest if which == "v1.FindTraces"
                   else storage_v1_pb2.FindTraceIDsRequest)(query=draw(v1_queries()))
    elif which == "v1.GetTrace":
        message = storage_v1_pb2.GetTraceRequest(trace_id=draw(ids))
        _stamp(message.start_time, draw(timestamps))
        _stamp(message.end_time, draw(timestamps))
        path = v1 + "GetTrace"
    elif which == "v1.GetDependencies":
        message = storage_v1_pb2.GetDependenciesRequest()
        _stamp(message.start_time, draw(timestamps))
        _stamp(message.end_time, draw(timestamps))
        path = "/jaeger.storage.v1.DependenciesReaderPlugin/GetDependencies"
    elif which == "v1.WriteSpan":
        path, message = "/jaeger.storage.v1.SpanWriterPlugin/WriteSpan", storage_v1_pb2.WriteSpanRequest(
            span=draw(jaeger_spans()))
    elif which == "v2.GetOperations":
        path, message = v2 + "GetOperations", trace_storage_pb2.GetOperationsRequest(service=draw(names),
                                                                                     span_kind=draw(names))
    elif which in ("v2.FindTraces", "v2.FindTraceIDs", "v2.FindTraceSummaries"):
        path = v2 + which.split(".")[1]
        request = {"v2.FindTraces": trace_storage_pb2.FindTracesRequest,
                   "v2.FindTraceIDs": trace_storage_pb2.FindTraceIDsRequest,
                   "v2.FindTraceSummaries": trace_storage_pb2.FindTraceSummariesRequest}[which]
        message = request(query=draw(v2_queries()))
    elif which == "v2.GetTraces":
        message = trace_storage_pb2.GetTracesRequest()
        for trace_id in draw(st.lists(ids, max_size=4)):
            params = message.query.add(trace_id=trace_id)
            _stamp(params.start_time, draw(timestamps))
        path = v2 + "GetTraces"
    else:
        message = dependency_storage_pb2.GetDependenciesRequest()
        _stamp(message.start_time, draw(timestamps))
        _stamp(message.end_time, draw(timestamps))
        path = "/jaeger.storage.v2.DependencyReader/GetDependencies"
    return path, message.SerializeToString()


@FUZZ
@given(call=grpc_calls())
def test_grpc_answers_random_field_values_without_internal(server, known_good, call: tuple[str, bytes]) -> None:
    path, payload = call
    method = next(m for m in METHODS if m[0] == path)
    with server.channel() as channel:
        _assert_not_internal(lambda: _call_raw(channel, method, payload))
