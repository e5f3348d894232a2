"""Just enough protobuf wire format to talk to ``jaeger.api_v3.QueryService``.

No Python stubs exist for Jaeger's api_v3, and its request and response
messages are tiny (strings, a nested message, an int32, Timestamps), so the
e2e tests build and parse them by hand instead of compiling a .proto file.
The streamed results are ``opentelemetry.proto.trace.v1.TracesData``, which
the ``opentelemetry-proto`` package already provides.

Field numbers are those of ``proto/api_v3/query_service.proto`` in
jaeger-idl v0.6.0 (the version used by Jaeger v2.13.0).
"""

from __future__ import annotations


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def f_varint(field: int, value: int) -> bytes:
    """A varint field (int32/int64/bool/enum); zero values are omitted as proto3 does."""
    return b"" if not value else _key(field, 0) + _varint(int(value))


def f_bytes(field: int, value: bytes) -> bytes:
    """A length-delimited field (bytes or an embedded message)."""
    return _key(field, 2) + _varint(len(value)) + value


def f_str(field: int, value: str) -> bytes:
    return b"" if not value else f_bytes(field, value.encode())


def f_msg(field: int, body: bytes) -> bytes:
    return f_bytes(field, body)


def timestamp(ns: int) -> bytes:
    """google.protobuf.Timestamp {int64 seconds = 1; int32 nanos = 2;}"""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return f_varint(1, seconds) + f_varint(2, nanos)


def duration(ns: int) -> bytes:
    """google.protobuf.Duration {int64 seconds = 1; int32 nanos = 2;}"""
    return timestamp(ns)


def parse(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """Decode one message level into ``(field, wire_type, value)`` tuples."""
    fields: list[tuple[int, int, int | bytes]] = []
    pos = 0

    def read_varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < len(data):
        key = read_varint()
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            fields.append((field, 0, read_varint()))
        elif wire_type == 2:
            length = read_varint()
            fields.append((field, 2, data[pos : pos + length]))
            pos += length
        elif wire_type == 1:
            fields.append((field, 1, data[pos : pos + 8]))
            pos += 8
        elif wire_type == 5:
            fields.append((field, 5, data[pos : pos + 4]))
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return fields


def strings(data: bytes, field: int) -> list[str]:
    return [bytes(v).decode() for f, w, v in parse(data) if f == field and w == 2]


def messages(data: bytes, field: int) -> list[bytes]:
    return [bytes(v) for f, w, v in parse(data) if f == field and w == 2]


# ---- jaeger.api_v3 messages -------------------------------------------------


def get_trace_request(trace_id_hex: str) -> bytes:
    """GetTraceRequest {string trace_id = 1; Timestamp start_time = 2; Timestamp end_time = 3; ...}"""
    return f_str(1, trace_id_hex)


def get_operations_request(service: str, span_kind: str = "") -> bytes:
    """GetOperationsRequest {string service = 1; string span_kind = 2;}"""
    return f_str(1, service) + f_str(2, span_kind)


def find_traces_request(
    service: str,
    start_min_ns: int,
    start_max_ns: int,
    *,
    operation: str = "",
    attributes: dict[str, str] | None = None,
    duration_min_ns: int = 0,
    duration_max_ns: int = 0,
    search_depth: int = 0,
) -> bytes:
    """FindTracesRequest {TraceQueryParameters query = 1;}

    TraceQueryParameters {string service_name = 1; string operation_name = 2;
    map<string,string> attributes = 3; Timestamp start_time_min = 4;
    Timestamp start_time_max = 5; Duration duration_min = 6;
    Duration duration_max = 7; int32 search_depth = 8; bool raw_traces = 9;}
    """
    q = f_str(1, service) + f_str(2, operation)
    for k, v in (attributes or {}).items():
        q += f_msg(3, f_str(1, k) + f_str(2, v))  # map entry {key = 1; value = 2}
    q += f_msg(4, timestamp(start_min_ns)) + f_msg(5, timestamp(start_max_ns))
    if duration_min_ns:
        q += f_msg(6, duration(duration_min_ns))
    if duration_max_ns:
        q += f_msg(7, duration(duration_max_ns))
    q += f_varint(8, search_depth)
    return f_msg(1, q)


def parse_services(data: bytes) -> list[str]:
    """GetServicesResponse {repeated string services = 1;}"""
    return strings(data, 1)


def parse_operations(data: bytes) -> list[tuple[str, str]]:
    """GetOperationsResponse {repeated Operation operations = 1;}, Operation {name = 1; span_kind = 2;}"""
    out = []
    for op in messages(data, 1):
        name = strings(op, 1)
        kind = strings(op, 2)
        out.append((name[0] if name else "", kind[0] if kind else ""))
    return out
