"""The CnosDB client gzips write bodies only when asked to (the server decides: see Config.compress)."""

from __future__ import annotations

import asyncio
import gzip

from aiohttp import web

from cnosdb_jaeger_storage.cnosdb.client import CnosDBClient


async def _writes_seen(compress: bool) -> list[tuple[str, bytes]]:
    seen: list[tuple[str, bytes]] = []

    async def write(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Content-Encoding", ""), await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/api/v1/write", write)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = CnosDBClient(f"http://127.0.0.1:{port}", "root", "", compress=compress)
    try:
        await client.write("t,a=1 v=1i 1", tenant="cnosdb", database="jaeger")
    finally:
        await client.close()
        await runner.cleanup()
    return seen


def test_write_bodies_are_sent_plain_without_compression() -> None:
    assert asyncio.run(_writes_seen(compress=False)) == [("", b"t,a=1 v=1i 1")]


def test_write_bodies_are_gzipped_with_compression() -> None:
    [(encoding, body)] = asyncio.run(_writes_seen(compress=True))
    assert encoding == "gzip"
    assert gzip.decompress(body) == b"t,a=1 v=1i 1"
