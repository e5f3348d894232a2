"""OTLP/HTTP receiver: `POST /v1/traces` (the OTLP standard path) and `POST /api/v1/traces` (CnosDB's).

Protobuf or JSON bodies (optionally gzip, deflate or zstd), answered in the request's own encoding, error
bodies included (a `google.rpc.Status`): 400 malformed, 401 bad credentials, 413 too large, 415 unknown
content type. CnosDB's path also takes CnosDB's `tenant`, `db` and `table` headers, so an exporter set up
for CnosDB's own endpoint works by changing only the host and port.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from ..metrics import METRICS
from ..proto import trace_service_pb2
from ..storage.tenancy import CnosDBHeaders, Tenancy
from .admission import RETRY_AFTER_SECONDS, Admission, Overloaded
from .http_support import HttpError, check_basic_auth, read_body, status_of
from .otlp_ingest import export

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
# The gRPC code an OTLP/HTTP error body carries, by HTTP status (OTLP/HTTP's google.rpc.Status).
_GRPC_CODE = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
              403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
              413: grpc.StatusCode.RESOURCE_EXHAUSTED, 415: grpc.StatusCode.INVALID_ARGUMENT,
              503: grpc.StatusCode.UNAVAILABLE}
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def decode_request(body: bytes, content_type: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """The export request of a body; HttpError 400 saying what is wrong with a body that is not one (the
    spans' IDs and times are checked by the store, for every write path)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    try:
        if content_type == PROTOBUF:
            request.ParseFromString(body)
        else:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise HttpError(400, f"malformed OTLP {content_type} body: expected a JSON object, got "
                                     f"{_JSON_TYPES.get(type(payload), type(payload).__name__)}")
            json_format.ParseDict(_ids_to_base64(payload), request, ignore_unknown_fields=True)
    except RecursionError:  # json's parser recurses: a body nested thousands deep is refused, not a crash
        raise HttpError(400, f"malformed OTLP {content_type} body: nested too deeply") from None
    except (DecodeError, ValueError, json_format.ParseError, TypeError, AttributeError) as exc:
        raise HttpError(400, f"malformed OTLP {content_type} body: {exc}") from None
    return request


def _ids_to_base64(payload: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON writes trace and span IDs as hex, where protobuf's JSON mapping expects base64."""
    for rs in _objects(payload, "resourceSpans"):
        for ss in _objects(rs, "scopeSpans"):
            for span in _objects(ss, "spans"):
                _convert_ids(span)
                for link in _objects(span, "links"):
                    _convert_ids(link)
    return payload


def _objects(message: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The objects of a repeated message field; a value of another shape is left for ParseDict to report."""
    value = message.get(name)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _convert_ids(message: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value:
            try:
                message[name] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise HttpError(400, f"{name} {value!r} is not hex") from None


def _status_body(content_type: str, status: int, message: str) -> bytes:
    code = _GRPC_CODE.get(status, grpc.StatusCode.INTERNAL).value[0]
    if content_type == JSON:
        return json.dumps({"code": code, "message": message}).encode()
    body: bytes = status_pb2.Status(code=code, message=message).SerializeToString()
    return body


class OtlpHttpReceiver:
    def __init__(self, tenancy: Tenancy, admission: Admission, *, max_body: int, user: str = "",
                 password: str = "") -> None:
        self._tenancy = tenancy
        self._admission = admission
        self._max_body, self._user, self._password = max_body, user, password

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body + 1)
        app.router.add_post("/v1/traces", self._otlp)
        app.router.add_post("/api/v1/traces", self._cnosdb)
        return app

    async def _otlp(self, request: web.Request) -> web.Response:
        return await self._handle(request, CnosDBHeaders(), "otlp_http")

    async def _cnosdb(self, request: web.Request) -> web.Response:
        return await self._handle(request, CnosDBHeaders.of(request.headers), "cnosdb_http")

    async def _handle(self, request: web.Request, cnosdb: CnosDBHeaders, transport: str) -> web.Response:
        content_type = request.content_type
        reply_type = JSON if content_type == JSON else PROTOBUF
        try:
            if content_type not in (PROTOBUF, JSON):
                raise HttpError(415, f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}")
            check_basic_auth(request, self._user, self._password)
            target_store = await self._tenancy.store_addressed(request.headers.get(self._tenancy.header), cnosdb)
            declared = request.content_length if request.content_length is not None else self._max_body
            async with self._admission.admit(min(declared, self._max_body)) as ticket:
                body = await read_body(request, self._max_body)
                await ticket.grow_to(len(body))
                export_request = decode_request(body, content_type)
                response = await export(target_store, export_request, transport)
        except Exception as exc:
            status, message = status_of(exc)
            if status >= 500 and not getattr(exc, "logged", False):
                log.warning("otlp request failed status=%d error=%r", status, message)
            METRICS.requests.inc(api=transport, outcome=str(status))
            if isinstance(exc, Overloaded):
                # Read the unread body through and discard it (a chunk at a time: no memory held), so that the
                # client, still sending, gets the 503 rather than a reset connection.
                await request.release()
            headers = ({"WWW-Authenticate": 'Basic realm="cnosdb-jaeger-storage"'} if status == 401
                       else {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(exc, Overloaded) else None)
            return web.Response(status=status, body=_status_body(reply_type, status, message),
                                content_type=reply_type, headers=headers)
        METRICS.requests.inc(api=transport, outcome="200")
        body = (json_format.MessageToJson(response, indent=None).encode() if reply_type == JSON
                else response.SerializeToString())
        return web.Response(body=body, content_type=reply_type)
