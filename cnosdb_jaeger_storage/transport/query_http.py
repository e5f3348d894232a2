"""The Jaeger query HTTP API (`/api/...`), which Grafana's Jaeger data source and the Jaeger UI read.

Routes, parameters and JSON as Jaeger's own query service (v1.76 `cmd/query/app/http_handler.go`), in its
envelope `{"data", "total", "limit", "offset", "errors"}`. CnosDB's `tenant`, `db` and `table` headers and
Basic auth are accepted too, so a Grafana data source set up for CnosDB's native API works pointed here.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..errors import InvalidRequest
from ..metrics import METRICS
from ..model.ids import trace_id_from_text
from ..model.jaeger_otlp import records_to_jaeger
from ..model.trace_query import TraceQuery
from ..proto import model_pb2
from ..storage.store import TraceStore
from ..storage.tenancy import CnosDBHeaders, Tenancy
from .http_support import check_basic_auth, status_of

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
DEFAULT_LOOKBACK_NS = 48 * 3600 * 10**9  # Jaeger's defaultTraceQueryLookbackDuration
DEFAULT_DEPENDENCY_LOOKBACK_MS = 24 * 3600 * 1000
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9}
_VALUE_TYPES = {model_pb2.STRING: "string", model_pb2.BOOL: "bool", model_pb2.INT64: "int64",
                model_pb2.FLOAT64: "float64", model_pb2.BINARY: "binary"}
_REF_TYPES = {model_pb2.CHILD_OF: "CHILD_OF", model_pb2.FOLLOWS_FROM: "FOLLOWS_FROM"}
_MAX_SAFE_INT = 2**53 - 1
# Go's encoding/json writes no spaces; clients that compare bodies (and Jaeger's own tests) expect that.
_json_response = functools.partial(web.json_response, dumps=functools.partial(json.dumps, separators=(",", ":")))


def _error_response(status: int, message: str) -> web.Response:
    """Jaeger writes its error envelope through Go's http.Error: text/plain, with a trailing newline."""
    body = json.dumps(envelope(None, errors=[{"code": status, "msg": message}]), separators=(",", ":")) + "\n"
    return web.Response(text=body, status=status, content_type="text/plain", charset="utf-8")


def go_duration_ns(text: str, name: str) -> int:
    """'1.5ms' → 1500000, as Go's time.ParseDuration."""
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidRequest(f"cannot parse {name} {text!r} as a duration")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def envelope(data: Any, total: int = 0, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def _id_hex(raw: bytes) -> str:
    """Jaeger's UI form: 16 hex digits when the high half of a trace ID is zero, else 32."""
    text = raw.hex()
    return text[16:] if len(text) == 32 and text.startswith("0" * 16) else text


def _kv_json(kv: model_pb2.KeyValue) -> dict[str, Any]:
    value: Any
    if kv.v_type == model_pb2.BOOL:
        value = kv.v_bool
    elif kv.v_type == model_pb2.INT64:
        value = kv.v_int64 if abs(kv.v_int64) <= _MAX_SAFE_INT else str(kv.v_int64)
    elif kv.v_type == model_pb2.FLOAT64:
        value = kv.v_float64
    elif kv.v_type == model_pb2.BINARY:
        value = base64.b64encode(kv.v_binary).decode()
    else:
        value = kv.v_str
    return {"key": kv.key, "type": _VALUE_TYPES.get(kv.v_type, "string"), "value": value}


def _kv_order(kv: model_pb2.KeyValue) -> tuple[Any, ...]:
    """Jaeger's `KeyValue.Compare`: by key, then value type, then the value fields in proto order."""
    return (kv.key, kv.v_type, kv.v_str, kv.v_bool, kv.v_int64, kv.v_float64, kv.v_binary)


def _sorted_tags(kvs: Any) -> list[dict[str, Any]]:
    return [_kv_json(kv) for kv in sorted(kvs, key=_kv_order)]


def _sorted_log_fields(fields: Any) -> list[dict[str, Any]]:
    """As Jaeger's `SortTagsAndLogFields` adjuster: the (first, string) `event` field first, the rest sorted."""
    fields = list(fields)
    event = next((i for i, f in enumerate(fields) if f.key == "event" and f.v_type == model_pb2.STRING), None)
    first = [fields.pop(event)] if event is not None else []
    return [_kv_json(kv) for kv in first + sorted(fields, key=_kv_order)]


def trace_json(spans: list[model_pb2.Span]) -> dict[str, Any]:
    """One trace in the Jaeger UI model, processes deduplicated as p1, p2, ...

    Tags, process tags and log fields are in the order jaeger-query's `SortTagsAndLogFields` adjuster gives them.
    """
    processes: dict[str, str] = {}
    process_json: dict[str, Any] = {}
    spans_json = []
    for span in spans:
        process = {"serviceName": span.process.service_name, "tags": _sorted_tags(span.process.tags)}
        key = json.dumps(process)
        if key not in processes:
            processes[key] = f"p{len(processes) + 1}"
            process_json[processes[key]] = process
        item: dict[str, Any] = {
            "traceID": _id_hex(span.trace_id), "spanID": span.span_id.hex(),
            "operationName": span.operation_name,
            "references": [{"refType": _REF_TYPES.get(r.ref_type, "CHILD_OF"), "traceID": _id_hex(r.trace_id),
                            "spanID": r.span_id.hex()} for r in span.references],
            "startTime": span.start_time.ToMicroseconds(), "duration": span.duration.ToMicroseconds(),
            "tags": _sorted_tags(span.tags),
            "logs": [{"timestamp": log_.timestamp.ToMicroseconds(), "fields": _sorted_log_fields(log_.fields)}
                     for log_ in span.logs],
            "processID": processes[key], "warnings": list(span.warnings) or None,
        }
        if span.flags:
            item["flags"] = span.flags
        spans_json.append(item)
    return {"traceID": spans_json[0]["traceID"] if spans_json else "", "spans": spans_json,
            "processes": process_json, "warnings": None}


def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name, "")
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not -(2**63) <= value < 2**63:  # Go's int, as Jaeger parses it
        raise InvalidRequest(f"cannot parse {name} {text!r} as an integer")
    return value


def search_query(request: web.Request) -> TraceQuery:
    q = request.query
    if not q.get("service"):
        raise InvalidRequest("parameter 'service' is required")
    attributes: dict[str, str] = {}
    for tag in q.getall("tag", []):
        key, sep, value = tag.partition(":")
        if not sep:
            raise InvalidRequest(f"malformed 'tag' parameter, expecting key:value, got {tag!r}")
        attributes[key] = value
    for tags in q.getall("tags", []):
        try:
            parsed = json.loads(tags)
        except ValueError:
            raise InvalidRequest(f"malformed 'tags' parameter, expecting a JSON object, got {tags!r}") from None
        if not isinstance(parsed, dict):
            raise InvalidRequest("malformed 'tags' parameter, expecting a JSON object")
        attributes.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()})
    now = time.time_ns()
    start, end = _int_param(request, "start"), _int_param(request, "end")
    min_d = go_duration_ns(q["minDuration"], "minDuration") if q.get("minDuration") else None
    max_d = go_duration_ns(q["maxDuration"], "maxDuration") if q.get("maxDuration") else None
    if min_d is not None and max_d is not None and max_d < min_d:
        raise InvalidRequest("'maxDuration' should be greater than 'minDuration'")
    return TraceQuery(service=q["service"], operation=q.get("operation", ""), attributes=attributes,
                      start_min=start * 1000 if start is not None else now - DEFAULT_LOOKBACK_NS,
                      start_max=end * 1000 if end is not None else now,
                      duration_min=min_d, duration_max=max_d,
                      limit=_int_param(request, "limit") or DEFAULT_LIMIT)


Handler = Callable[[web.Request, TraceStore], Awaitable[web.Response]]


class QueryHttpApi:
    def __init__(self, tenancy: Tenancy, *, user: str = "", password: str = "") -> None:
        self._tenancy, self._user, self._password = tenancy, user, password

    def app(self) -> web.Application:
        app = web.Application()
        routes = {"/api/services": self._services, "/api/services/{service}/operations": self._service_operations,
                  "/api/operations": self._operations, "/api/traces": self._traces,
                  "/api/traces/{trace_id}": self._trace, "/api/dependencies": self._dependencies}
        for path, handler in routes.items():
            app.router.add_get(path, self._wrap(handler))
        return app

    async def _store(self, request: web.Request) -> TraceStore:
        check_basic_auth(request, self._user, self._password)
        return await self._tenancy.store_addressed(request.headers.get(self._tenancy.header),
                                                   CnosDBHeaders.of(request.headers))

    def _wrap(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        api = "query_http." + handler.__name__.strip("_")

        async def run(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                response = await handler(request, await self._store(request))
            except Exception as exc:  # turned into Jaeger's error envelope at this edge
                status, message = status_of(exc)
                if status >= 500 and not getattr(exc, "logged", False):
                    log.warning("query request failed path=%s error=%r", request.path, message)
                response = _error_response(status, message)
            METRICS.requests.inc(api=api, outcome=str(response.status))
            METRICS.request_seconds.observe(time.perf_counter() - started, api=api)
            return response
        return run

    async def _services(self, request: web.Request, store: TraceStore) -> web.Response:
        services = await store.services()
        # `null`, not `[]`, when there are none: Jaeger passes on the storage API's empty (nil) list as is.
        return _json_response(envelope(services or None, len(services)))

    async def _service_operations(self, request: web.Request, store: TraceStore) -> web.Response:
        names = sorted({name for name, _ in await store.operations(request.match_info["service"])})
        # `null` when there are none, as Jaeger's getUniqueOperationNames (a nil slice appended to).
        return _json_response(envelope(names or None, len(names)))

    async def _operations(self, request: web.Request, store: TraceStore) -> web.Response:
        service = request.query.get("service", "")
        if not service:
            raise InvalidRequest("parameter 'service' is required")
        operations = await store.operations(service, request.query.get("spanKind", ""))
        data = [{"name": name, "spanKind": kind} for name, kind in operations]
        return _json_response(envelope(data, len(data)))

    async def _traces(self, request: web.Request, store: TraceStore) -> web.Response:
        trace_ids = request.query.getall("traceID", [])
        if trace_ids:
            data, errors = [], []
            for text in trace_ids:
                trace = await store.get_trace_records(trace_id_from_text(text))
                if trace:
                    data.append(trace_json(records_to_jaeger(trace)))
                else:  # as Jaeger: no code, the ID in its own form
                    trace_id = _id_hex(bytes.fromhex(trace_id_from_text(text)))
                    errors.append({"msg": "trace not found", "traceID": trace_id})
            return _json_response(envelope(data, errors=errors or None))
        data = [trace_json(records_to_jaeger(t)) async for t in store.find_traces_records(search_query(request))]
        return _json_response(envelope(data))  # Jaeger leaves `total` 0 for traces

    async def _trace(self, request: web.Request, store: TraceStore) -> web.Response:
        start, end = _int_param(request, "start"), _int_param(request, "end")
        trace = await store.get_trace_records(trace_id_from_text(request.match_info["trace_id"]),
                                              start * 1000 if start is not None else None,
                                              end * 1000 if end is not None else None)
        if not trace:
            return _error_response(404, "trace not found")
        return _json_response(envelope([trace_json(records_to_jaeger(trace))]))

    async def _dependencies(self, request: web.Request, store: TraceStore) -> web.Response:
        end_ms = _int_param(request, "endTs") or time.time_ns() // 10**6
        lookback_ms = _int_param(request, "lookback") or DEFAULT_DEPENDENCY_LOOKBACK_MS
        links = await store.dependencies((end_ms - lookback_ms) * 10**6, end_ms * 10**6)
        service = request.query.get("service")
        data = [{"parent": p, "child": c, "callCount": n} for p, c, n in links
                if not service or service in (p, c)]
        return _json_response(envelope(data))  # Jaeger leaves `total` 0 here too
