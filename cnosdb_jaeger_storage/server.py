"""Wires the configured pieces together and runs them in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import grpc_v1, grpc_v2, otlp_grpc
from . import query_builder as sql
from .cnosdb_client import CnosDBClient
from .config import Config, split_addr, ttl_seconds
from .errors import CnosDBError
from .metrics import METRICS
from .otlp_http import OtlpHttpReceiver
from .store import Target, TraceStore
from .tenancy import Tenancy, parse_tenants
from .writer import BatchWriter

log = logging.getLogger(__name__)

# Spans this close to the TTL edge are refused by us rather than by CnosDB, whose clock may differ a bit.
_TTL_MARGIN_NS = 60 * 1_000_000_000


def oldest_start(ttl: str) -> Callable[[], int] | None:
    seconds = ttl_seconds(ttl)
    if seconds is None:
        return None
    return lambda: time.time_ns() - seconds * 1_000_000_000 + _TTL_MARGIN_NS


@dataclass
class Server:
    """The running server; `close()` stops accepting, writes what is queued, and releases everything."""

    config: Config
    client: CnosDBClient
    tenancy: Tenancy
    grpc_servers: list[grpc.aio.Server] = field(default_factory=list)
    http_runners: list[web.AppRunner] = field(default_factory=list)
    writers: list[BatchWriter] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    embedded: object | None = None  # the in-process cnosdb-lite, if any
    engine: object | None = None

    async def close(self) -> None:
        for server in self.grpc_servers:
            await server.stop(grace=5)
        for runner in self.http_runners:
            await runner.cleanup()
        for writer in self.writers:
            await writer.close()
        await self.client.close()
        if self.embedded is not None:
            await self.embedded.close()  # type: ignore[attr-defined]
        if self.engine is not None:
            self.engine.close()  # type: ignore[attr-defined]


async def start(config: Config) -> Server:
    embedded = engine = None
    url = config.cnosdb_url
    if config.embedded:
        from .embedded.engine import Engine
        from .embedded.http_server import start_server

        engine = Engine(config.data_dir)
        embedded = await start_server(engine, "127.0.0.1", 0, user=config.cnosdb_user)
        url = embedded.url
        log.info("embedded cnosdb-lite data_dir=%s url=%s", config.data_dir, url)
    client = CnosDBClient(url, config.cnosdb_user, config.cnosdb_password, compress=not config.embedded,
                          timeout=config.cnosdb_timeout)
    default = Target(config.tenant, config.database, config.table)
    writers: list[BatchWriter] = []
    retention: dict[Target, str] = {}  # each configured database's TTL as CnosDB reports it

    def make_store(target: Target) -> TraceStore:
        async def write(body: str) -> None:
            await client.write(body, tenant=target.tenant, database=target.database)

        writer = BatchWriter(write, batch_size=config.batch_size, batch_delay=config.batch_delay,
                             max_pending=config.max_pending_spans, attempts=config.write_retries,
                             name=f"{target.tenant}/{target.database}")
        writer.start()
        writers.append(writer)
        return TraceStore(client, target, writer, oldest_start(retention.get(target, "INF")))

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
    server = Server(config, client, tenancy, writers=writers, embedded=embedded, engine=engine)
    try:
        retention.update(await _create_databases(client, tenancy.targets, config.ttl))
        await _start_grpc(server)
        await _start_http(server)
    except BaseException:
        await server.close()
        raise
    return server


async def _create_databases(client: CnosDBClient, targets: list[Target], ttl: str,
                            wait: float = 60.0) -> dict[Target, str]:
    """Creates each database if missing, waiting for CnosDB to come up; returns each one's actual TTL.

    A database that already existed keeps its own TTL, which is the one CnosDB enforces on writes.
    """
    deadline = time.monotonic() + wait
    retention = {}
    for target in targets:
        while True:
            try:
                await client.sql(sql.create_database(target.database, ttl), tenant=target.tenant,
                                 database="public")
                rows = await client.sql(sql.describe_database(target.database), tenant=target.tenant,
                                        database=target.database)
                retention[target] = str(rows[0].get("ttl", ttl)) if rows else ttl
                break
            except CnosDBError as exc:
                if not exc.retryable or time.monotonic() > deadline:
                    raise
                log.warning("waiting for CnosDB error=%r", str(exc))
                await asyncio.sleep(1)
    return retention


async def _start_grpc(server: Server) -> None:
    config = server.config
    main = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                                    ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    names = [*grpc_v1.register(main, server.tenancy, streaming_writer=config.v1_streaming_writer),
             *grpc_v2.register(main, server.tenancy),
             *otlp_grpc.register(main, server.tenancy)]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, main)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], main)
    server.ports["grpc"] = _bind(main, config.grpc_addr)
    server.grpc_servers.append(main)
    if config.otlp_grpc_addr:
        otlp_only = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
        otlp_grpc.register(otlp_only, server.tenancy)
        server.ports["otlp_grpc"] = _bind(otlp_only, config.otlp_grpc_addr)
        server.grpc_servers.append(otlp_only)
    for grpc_server in server.grpc_servers:
        await grpc_server.start()


def _bind(grpc_server: grpc.aio.Server, addr: str) -> int:
    host, port = split_addr(addr)
    bound = grpc_server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {addr}")
    return bound


async def _start_http(server: Server) -> None:
    config = server.config
    apps: dict[str, tuple[str, web.Application]] = {}
    if config.otlp_http_addr:
        receiver = OtlpHttpReceiver(server.tenancy, max_body=config.max_request_bytes,
                                    user=config.receiver_user, password=config.receiver_password)
        apps["otlp_http"] = (config.otlp_http_addr, receiver.app())
    if config.admin_addr:
        apps["admin"] = (config.admin_addr, _admin_app(server))
    if config.purge_addr:
        apps["purge"] = (config.purge_addr, _purge_app(server))
    if config.query_http_addr:
        from .query_http import QueryHttpApi

        api = QueryHttpApi(server.tenancy, user=config.receiver_user, password=config.receiver_password)
        apps["query_http"] = (config.query_http_addr, api.app())
    for name, (addr, app) in apps.items():
        # Bodies reach the handlers as sent: `http_support.read_body` decompresses them itself, bounded
        # (aiohttp's own decoding would gunzip them a second time, and cannot read zstd at all).
        runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await runner.setup()
        host, port = split_addr(addr)
        site = web.TCPSite(runner, host, port)
        await site.start()
        server.http_runners.append(runner)
        server.ports[name] = runner.addresses[0][1]


def _admin_app(server: Server) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=METRICS.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def healthz(_: web.Request) -> web.Response:
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


async def serve(config: Config) -> None:
    """Runs until SIGINT or SIGTERM, then shuts down cleanly."""
    server = await start(config)
    log.warning("serving %s", " ".join(f"{k}=:{v}" for k, v in server.ports.items()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.warning("shutting down")
    await server.close()
