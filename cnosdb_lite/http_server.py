"""cnosdb-lite's HTTP API: the CnosDB 2.4.3 routes a Jaeger storage backend uses, over an `Engine`.

Routes, as CnosDB v2.4.3 serves them: `GET|HEAD /api/v1/ping`, `POST /api/v1/sql`, `POST /api/v1/write`,
`POST /api/v1/traces`. Statuses, error codes and bodies follow CnosDB's warp service
(`main/src/http/http_service.rs`), including the order in which it checks a request:
body size (413) → `Authorization` present (400) → per-route headers → `Content-Encoding` (400) →
credentials (400 / 422) → the request itself. Unknown paths are 404 and wrong methods 405, both empty.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from .engine import Engine
from .errors import CnosDBError
from .otlp_traces import flatten_request, parse_log_error, rows_to_line_protocol
from .result_format import (
    choose_accept_encoding,
    decode_body,
    encode_body,
    format_table,
    parse_accept,
    parse_content_encoding,
)
from .scan import HEADER as SCAN_HEADER

__all__ = ["RunningServer", "create_app", "start_server"]

log = logging.getLogger("cnosdb_lite.http")

VERSION = "2.4.3"
DEFAULT_TENANT = "cnosdb"
DEFAULT_DATABASE = "public"
# query.query_sql_limit and query.write_sql_limit defaults of CnosDB's config.toml.
SQL_BODY_LIMIT = 16 * 1024 * 1024
WRITE_BODY_LIMIT = 160 * 1024 * 1024
PRECISIONS = ("ms", "us", "ns")

_ENGINE = web.AppKey("engine", Engine)


@dataclass(frozen=True)
class Settings:
    user: str
    password: str
    auth_enabled: bool
    sql_body_limit: int
    write_body_limit: int


_SETTINGS = web.AppKey("settings", Settings)


class _TooLarge(Exception):
    pass


def error_response(error: CnosDBError) -> web.Response:
    body = json.dumps(
        {"error_code": error.code, "error_message": error.message}, ensure_ascii=False, separators=(",", ":")
    )
    return web.Response(status=error.status, body=body.encode(), headers={"Content-Type": "application/json"})


async def _read_body(request: web.Request, limit: int) -> bytes:
    """Read the whole body, refusing (413) as soon as it is known to exceed `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _require_authorization(request: web.Request) -> str:
    value = request.headers.get("Authorization")
    if value is None:
        # warp's MissingHeader rejection, answered with the "unknown" code 000000.
        raise CnosDBError(400, "000000", 'Missing request header "authorization"')
    return value


def _parse_basic(authorization: str) -> tuple[str, str]:
    malformed = CnosDBError(400, "040006", f"Parse auth, malformed basic auth encoding: {authorization}")
    if not authorization.startswith("Basic "):
        raise malformed
    try:
        text = base64.b64decode(authorization[len("Basic "):], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise malformed from exc
    user, sep, password = text.partition(":")
    if not sep:
        raise malformed
    return user, password


def _authenticate(settings: Settings, authorization: str) -> str:
    user, password = _parse_basic(authorization)
    if settings.auth_enabled:
        if user != settings.user or password != settings.password:
            raise CnosDBError(
                422,
                "010016",
                f"Auth error: Access denied for user '{user}' (using xxx) username or password invalid",
            )
    elif user != settings.user:
        # Without auth the password is not checked, but the user must exist.
        raise CnosDBError(422, "010016", f"Auth error: The user {user} not found")
    return user


def _decoded_body(request: web.Request, body: bytes) -> bytes:
    return decode_body(parse_content_encoding(request.headers.get("Content-Encoding")), body)


async def handle_ping(request: web.Request) -> web.Response:
    body = json.dumps({"version": VERSION, "status": "healthy"}, separators=(",", ":"))
    return web.Response(body=body.encode(), headers={"Content-Type": "application/json"})


async def handle_sql(request: web.Request) -> web.Response:
    engine = request.app[_ENGINE]
    settings = request.app[_SETTINGS]
    body = await _read_body(request, settings.sql_body_limit)
    authorization = _require_authorization(request)
    sql = _decoded_body(request, body).decode("utf-8", errors="replace")
    _authenticate(settings, authorization)
    fmt = parse_accept(request.headers.get("Accept"))
    encoding = choose_accept_encoding(request.headers.get("Accept-Encoding"))
    tenant = request.query.get("tenant", DEFAULT_TENANT)
    database = request.query.get("db", DEFAULT_DATABASE)

    def run() -> tuple[bytes | None, dict[str, str]]:
        table, scan = engine.execute_with_scan(tenant, database, sql)
        extra = {SCAN_HEADER: scan.header_value()} if scan is not None else {}
        if table is None:
            return None, extra
        return encode_body(encoding, format_table(table, fmt)), extra

    payload, extra = await asyncio.to_thread(run)
    if payload is None:
        return web.Response(headers=extra)
    headers = {"Content-Type": fmt.content_type, **extra}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return web.Response(body=payload, headers=headers)


async def handle_write(request: web.Request) -> web.Response:
    engine = request.app[_ENGINE]
    settings = request.app[_SETTINGS]
    body = await _read_body(request, settings.write_body_limit)
    authorization = _require_authorization(request)
    body = _decoded_body(request, body)
    _authenticate(settings, authorization)
    precision = request.query.get("precision", "").lower()
    if precision not in PRECISIONS:
        precision = "ns"  # CnosDB falls back to ns silently for anything else, `s` included
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnosDBError(422, "040015", "Invalid utf-8 sequence: invalid utf-8 sequence") from exc
    tenant = request.query.get("tenant", DEFAULT_TENANT)
    database = request.query.get("db", DEFAULT_DATABASE)
    await asyncio.to_thread(engine.write_lines, tenant, database, text, precision)
    return web.Response()


async def handle_traces(request: web.Request) -> web.Response:
    engine = request.app[_ENGINE]
    settings = request.app[_SETTINGS]
    body = await _read_body(request, settings.write_body_limit)
    authorization = _require_authorization(request)
    tenant = request.headers.get("tenant", DEFAULT_TENANT)
    database = request.headers.get("db", DEFAULT_DATABASE)
    table = request.headers.get("table")
    if table is None:
        raise parse_log_error("table param is None")
    body = _decoded_body(request, body)
    _authenticate(settings, authorization)
    # Only this exact string selects the protobuf decoder; everything else falls to "unsupported".
    if request.headers.get("Content-Type") != "application/x-protobuf":
        raise parse_log_error("invalid log type: unsupported")

    def run() -> None:
        rows = flatten_request(body)
        if rows:
            engine.write_lines(tenant, database, rows_to_line_protocol(table, rows), "ns")

    await asyncio.to_thread(run)
    return web.Response()


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    try:
        response = await handler(request)
    except web.HTTPNotFound:
        response = web.Response(status=404)
    except web.HTTPMethodNotAllowed:
        response = web.Response(status=405)
    except _TooLarge:
        response = web.Response(status=413)
    except CnosDBError as exc:
        response = error_response(exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("event=request_failed method=%s path=%s", request.method, request.path)
        response = web.Response(status=500)
    log.debug(
        "event=request method=%s path=%s status=%d duration_ms=%.1f",
        request.method,
        request.path,
        response.status,
        (time.monotonic() - started) * 1000,
    )
    return response


def create_app(
    engine: Engine,
    *,
    user: str = "root",
    password: str = "",
    auth_enabled: bool = False,
    sql_body_limit: int = SQL_BODY_LIMIT,
    write_body_limit: int = WRITE_BODY_LIMIT,
) -> web.Application:
    """The aiohttp application. Serve it with `auto_decompress=False` (as `start_server` does): request
    bodies are decoded here, by CnosDB's rules, not by aiohttp."""
    app = web.Application(middlewares=[_errors_middleware], client_max_size=write_body_limit)
    app[_ENGINE] = engine
    app[_SETTINGS] = Settings(user, password, auth_enabled, sql_body_limit, write_body_limit)
    app.router.add_get("/api/v1/ping", handle_ping)  # also answers HEAD
    app.router.add_post("/api/v1/sql", handle_sql)
    app.router.add_post("/api/v1/write", handle_write)
    app.router.add_post("/api/v1/traces", handle_traces)
    return app


class RunningServer:
    """A started server; `url` is its base address, `close()` stops it (the engine stays open)."""

    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self._runner = runner
        self.url = url

    async def close(self) -> None:
        await self._runner.cleanup()


async def start_server(
    engine: Engine,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    user: str = "root",
    password: str = "",
    auth_enabled: bool = False,
    sql_body_limit: int = SQL_BODY_LIMIT,
    write_body_limit: int = WRITE_BODY_LIMIT,
) -> RunningServer:
    app = create_app(
        engine,
        user=user,
        password=password,
        auth_enabled=auth_enabled,
        sql_body_limit=sql_body_limit,
        write_body_limit=write_body_limit,
    )
    runner = web.AppRunner(app, auto_decompress=False, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningServer(runner, f"http://{shown}:{bound_port}")
