"""Wires the configured pieces together and runs them in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cnosdb_lite import clikit

from .cnosdb import sql
from .cnosdb.client import CnosDB, CnosDBClient
from .cnosdb.in_process import InProcessCnosDB
from .cnosdb.span_columns import ColumnarWrite
from .config import Config, split_addr, ttl_seconds
from .errors import CnosDBError
from .metrics import METRICS
from .storage.store import Target, TraceStore
from .storage.tenancy import Tenancy, parse_tenants
from .storage.writer import BatchWriter, WriteFn, line_protocol
from .transport import grpc_v1, grpc_v2, otlp_grpc
from .transport.admission import Admission
from .transport.otlp_http import OtlpHttpReceiver

if TYPE_CHECKING:  # imported at run time only when the embedded default starts (the `embedded` extra)
    from cnosdb_lite.engine import Engine

log = logging.getLogger(__name__)

# How long a request waits for room in the in-flight budget before it is told to retry (503 / UNAVAILABLE).
ADMISSION_WAIT_SECONDS = 5.0
_HTTP_READ_AHEAD = 16 * 1024
_GRPC_MESSAGE_LIMITS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                        ("grpc.max_send_message_length", 64 * 1024 * 1024)]

# Spans this close to the TTL edge are refused by us rather than by CnosDB, whose clock may differ a bit.
_TTL_MARGIN_NS = 60 * 1_000_000_000


def oldest_start(ttl: str) -> Callable[[], int] | None:
    seconds = ttl_seconds(ttl)
    if seconds is None:
        return None
    return lambda: time.time_ns() - seconds * 1_000_000_000 + _TTL_MARGIN_NS


class StartupError(Exception):
    """Why the server cannot start, in one line that names the option to change; printed without a traceback."""


@dataclass
class Listeners:
    """Every listening socket, bound before anything else is opened, so a busy port fails first and alone.

    gRPC servers bind without SO_REUSEPORT (gRPC's default would silently share a busy port with another
    process and split the clients between the two). HTTP sockets are bound here and served later.
    """

    grpc: dict[str, grpc.aio.Server] = field(default_factory=dict)
    http: dict[str, socket.socket] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def open(cls, config: Config) -> Listeners:
        listeners = cls()
        try:
            listeners._bind_grpc("grpc", "--grpc-addr", config.grpc_addr)
            if config.otlp_grpc_addr:
                listeners._bind_grpc("otlp_grpc", "--otlp-grpc-addr", config.otlp_grpc_addr)
            for name in ("otlp_http", "admin", "purge", "query_http"):
                addr = getattr(config, f"{name}_addr")
                if addr:
                    listeners._bind_http(name, "--" + name.replace("_", "-") + "-addr", addr)
        except BaseException:
            listeners.close()
            raise
        return listeners

    def _bind_grpc(self, name: str, option: str, addr: str) -> None:
        server = grpc.aio.server(options=[*_GRPC_MESSAGE_LIMITS, ("grpc.so_reuseport", 0)])
        host, port = split_addr(addr, option)
        try:
            bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise StartupError(f"{option} {addr}: cannot listen there (the port is in use, or the address is "
                               "not this machine's); choose another with " + option)
        self.grpc[name], self.ports[name] = server, bound

    def _bind_http(self, name: str, option: str, addr: str) -> None:
        host, port = split_addr(addr, option)
        try:
            sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StartupError(f"{option} {addr}: cannot listen there ({reason}); choose another with "
                               f"{option}") from None
        self.http[name], self.ports[name] = sock, sock.getsockname()[1]

    def close(self) -> None:
        for sock in self.http.values():
            sock.close()


@dataclass
class Server:
    """The running server; `close()` stops accepting, writes what is queued, and releases everything."""

    config: Config
    client: CnosDB
    tenancy: Tenancy
    listeners: Listeners
    admission: Admission
    grpc_servers: list[grpc.aio.Server] = field(default_factory=list)
    http_runners: list[web.AppRunner] = field(default_factory=list)
    writers: list[BatchWriter[Any]] = field(default_factory=list)
    engine: Engine | None = None  # the embedded cnosdb-lite, if no --cnosdb-url
    ready: bool = False  # the configured databases exist: until then /healthz says so

    @property
    def ports(self) -> dict[str, int]:
        return self.listeners.ports

    async def close(self) -> None:
        for server in self.grpc_servers:
            await server.stop(grace=5)
        for runner in self.http_runners:
            await runner.cleanup()
        self.listeners.close()
        for writer in self.writers:
            await writer.close()
        await self.client.close()
        if self.engine is not None:
            self.engine.close()


async def start(config: Config) -> Server:
    listeners = Listeners.open(config)
    engine = None
    client: CnosDB
    try:
        if config.embedded:
            engine = _open_engine(config.data_dir, config.memtable_size)
            client = InProcessCnosDB(engine)
            log.info("embedded cnosdb-lite data_dir=%s", config.data_dir)
        else:
            client = CnosDBClient(config.cnosdb_url, config.cnosdb_user, config.cnosdb_password,
                                  compress=config.compress, timeout=config.cnosdb_timeout)
    except BaseException:
        listeners.close()
        raise
    default = Target(config.tenant, config.database, config.table)
    writers: list[BatchWriter[Any]] = []
    retention: dict[Target, str] = {}  # each configured database's TTL as CnosDB reports it

    def make_store(target: Target) -> TraceStore:
        write: WriteFn[Any]
        if isinstance(client, InProcessCnosDB):  # spans as rows of values, no line protocol (as `TraceStore` gives)
            embedded = client

            async def write_columns(writes: list[ColumnarWrite]) -> None:
                await embedded.write_columns(writes, tenant=target.tenant, database=target.database)
            write = write_columns
        else:
            async def write_lines(body: str) -> None:
                await client.write(body, tenant=target.tenant, database=target.database)
            write = line_protocol(write_lines)

        writer: BatchWriter[Any] = BatchWriter(
            write, batch_size=config.batch_size, linger=config.batch_delay, max_in_flight=config.max_writes_in_flight,
            max_pending=config.max_pending_spans, attempts=config.write_retries,
            name=f"{target.tenant}/{target.database}")
        writer.start()
        writers.append(writer)
        return TraceStore(client, target, writer, oldest_start(retention.get(target, "INF")),
                          max_span_attributes=config.max_span_attributes,
                          max_attribute_columns=config.max_attribute_columns)

    async def database_exists(tenant: str, database: str) -> bool:
        try:
            rows = await client.sql(sql.show_databases(), tenant=tenant, database="public")
        except CnosDBError as exc:
            if exc.retryable:
                raise
            return False  # CnosDB refuses an unknown tenant
        return any(row.get("database_name") == database for row in rows)

    tenancy = Tenancy(default, parse_tenants(config.tenants, default), config.tenant_header, make_store,
                      database_exists, config.max_tables)
    admission = Admission(config.max_inflight_bytes, ADMISSION_WAIT_SECONDS)
    server = Server(config, client, tenancy, listeners, admission, writers=writers, engine=engine)
    try:
        await _serve_http(server, ["admin"])  # /healthz answers while CnosDB is awaited
        retention.update(await _create_databases(client, tenancy.targets, config))
        server.ready = True
        await _start_grpc(server)
        await _serve_http(server, ["otlp_http", "purge", "query_http"])
    except BaseException:
        await server.close()
        raise
    return server


def _open_engine(data_dir: str, memtable_mib: int) -> Engine:
    """The embedded cnosdb-lite on `data_dir`, or StartupError saying what is missing or in the way."""
    try:  # the `embedded` extra: pyarrow and DataFusion, only needed here
        from cnosdb_lite.engine import Engine
        from cnosdb_lite.lock import DataDirLocked
    except ImportError as exc:
        raise StartupError(f"the embedded cnosdb-lite cannot start ({exc}): install it with "
                           "pip install 'cnosdb-jaeger-storage[embedded]', or give --cnosdb-url") from None
    _check_data_dir(data_dir)
    try:
        return Engine(data_dir, memtable_bytes=memtable_mib * 2**20)
    except DataDirLocked as exc:
        raise StartupError(f"--data-dir {data_dir}: {exc}") from None


def _check_data_dir(path: str) -> None:
    """The embedded engine's directory: creatable, a directory, writable; else one line naming the option."""
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StartupError(f"--data-dir {path}: not a directory; point --data-dir at a directory") from None
    except OSError as exc:
        raise StartupError(f"--data-dir {path}: cannot create it ({exc.strerror}); point --data-dir at a "
                           "directory this user may write") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StartupError(f"--data-dir {path}: not writable by this user; point --data-dir at a directory "
                           "this user may write")


async def _create_databases(client: CnosDB, targets: list[Target], config: Config) -> dict[Target, str]:
    """Creates each database if missing, waiting for CnosDB to come up; returns each one's actual TTL.

    A database that already existed keeps its own TTL, which is the one CnosDB enforces on writes.
    """
    wait = config.cnosdb_wait
    deadline = time.monotonic() + wait
    retention = {}
    for target in targets:
        while True:
            try:
                await client.sql(sql.create_database(target.database, config.ttl), tenant=target.tenant,
                                 database="public")
                rows = await client.sql(sql.describe_database(target.database), tenant=target.tenant,
                                        database=target.database)
                retention[target] = str(rows[0].get("ttl", config.ttl)) if rows else config.ttl
                break
            except CnosDBError as exc:
                left = deadline - time.monotonic()
                if exc.status in (401, 403) or "auth" in exc.message.lower():
                    raise StartupError(f"--cnosdb-user/--cnosdb-password: CnosDB at {config.cnosdb_url or 'embedded'} "
                                       f"refused them ({exc.message}); check the credentials") from None
                if not exc.retryable:
                    raise StartupError(f"--tenant/--database: CnosDB refused to create database "
                                       f"{target.tenant}/{target.database}: {exc.code} {exc.message}") from None
                if left <= 0:
                    raise StartupError(f"--cnosdb-url {config.cnosdb_url}: CnosDB did not answer for {wait:.0f} s "
                                       f"({exc}); start it or point --cnosdb-url at it") from None
                log.warning("waiting for CnosDB error=%r retrying_for=%.0fs", str(exc), left)
                await asyncio.sleep(min(1.0, left))
    return retention


async def _start_grpc(server: Server) -> None:
    config = server.config
    main = server.listeners.grpc["grpc"]
    names = [*grpc_v1.register(main, server.tenancy, streaming_writer=config.v1_streaming_writer),
             *grpc_v2.register(main, server.tenancy),
             *otlp_grpc.register(main, server.tenancy, server.admission)]
    await _add_health(main, names)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], main)
    server.grpc_servers.append(main)
    otlp_only = server.listeners.grpc.get("otlp_grpc")
    if otlp_only is not None:
        await _add_health(otlp_only, otlp_grpc.register(otlp_only, server.tenancy, server.admission))
        server.grpc_servers.append(otlp_only)
    for grpc_server in server.grpc_servers:
        await grpc_server.start()


async def _add_health(grpc_server: grpc.aio.Server, names: list[str]) -> None:
    """Every service of the port, and the port as a whole (""), SERVING."""
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def _serve_http(server: Server, names: list[str]) -> None:
    config = server.config
    apps: dict[str, web.Application] = {}
    for name in [n for n in names if n in server.listeners.http]:
        if name == "otlp_http":
            apps[name] = OtlpHttpReceiver(server.tenancy, server.admission, max_body=config.max_request_bytes,
                                          user=config.receiver_user, password=config.receiver_password).app()
        elif name == "admin":
            apps[name] = _admin_app(server)
        elif name == "purge":
            apps[name] = _purge_app(server)
        else:
            from .transport.query_http import QueryHttpApi

            apps[name] = QueryHttpApi(server.tenancy, user=config.receiver_user,
                                      password=config.receiver_password).app()
    for name, app in apps.items():
        # Bodies reach the handlers as sent: `http_support.read_body` decompresses them itself, bounded
        # (aiohttp's own decoding would gunzip them a second time, and cannot read zstd at all).
        # A small read-ahead per connection: a request waiting for admission holds at most 2 x 16 KiB of its body.
        runner = web.AppRunner(app, access_log=None, auto_decompress=False, read_bufsize=_HTTP_READ_AHEAD)
        await runner.setup()
        await web.SockSite(runner, server.listeners.http[name]).start()
        server.http_runners.append(runner)


def _admin_app(server: Server) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=METRICS.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def healthz(_: web.Request) -> web.Response:
        if not server.ready:
            return web.json_response({"status": "waiting for CnosDB"}, status=503)
        ok = await server.client.ping()
        return web.json_response({"status": "ok" if ok else "cnosdb unreachable"}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


def _purge_app(server: Server) -> web.Application:
    """Test-only (Jaeger's storage integration suite cleans up through it): drops every span table."""
    async def purge(_: web.Request) -> web.Response:
        for target in server.tenancy.targets:
            await server.tenancy.configured_store(target).purge()
        response = web.Response(text="purged")
        response.force_close()  # Jaeger's suite checks for leaked goroutines: no idle keep-alive
        return response

    app = web.Application()
    app.router.add_post("/purge", purge)
    return app


def startup_summary(server: Server) -> str:
    """Every listener with its host, the storage behind them, and what is off: the one line an operator reads."""
    config = server.config
    listeners = []
    for name in ("grpc", "otlp_grpc", "otlp_http", "query_http", "admin", "purge"):
        addr = getattr(config, f"{name}_addr")
        if name in server.ports:
            host, _ = split_addr(addr)
            listeners.append(f"{name}={host}:{server.ports[name]}")
        elif name != "purge":
            listeners.append(f"{name}=off")
    storage = (f"storage=embedded-cnosdb-lite data_dir={config.data_dir}" if config.embedded
               else f"storage=cnosdb url={config.cnosdb_url}")
    return " ".join([*listeners, storage, f"tenant={config.tenant} database={config.database} table={config.table}",
                     f"event_loop={clikit.event_loop_name(asyncio.get_running_loop())}"])


async def serve(config: Config) -> None:
    """Runs until SIGINT or SIGTERM, then shuts down cleanly."""
    server = await start(config)
    clikit.tune_gc()
    log.warning("serving %s", startup_summary(server))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.warning("shutting down")
    await server.close()
