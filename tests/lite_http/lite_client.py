"""Test client and background server for cnosdb-lite's HTTP layer: a real Engine on a real socket.

The server runs on its own event loop in a background thread; tests talk to it with aiohttp through the
blocking `Client`, so tests stay plain functions. The client sends only the headers a test names (no
automatic Accept, Accept-Encoding, User-Agent or Content-Type) and never decompresses responses.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy

from cnosdb_lite.engine import Engine
from cnosdb_lite.http_server import RunningServer, start_server

AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_names = itertools.count()


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


ROOT = basic("root")


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


class Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def request(
        self,
        method: str,
        path: str,
        data: bytes | str | None = None,
        *,
        headers: dict[str, str] | None = None,
        auth: str | None = ROOT,
    ) -> Reply:
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = auth
        if isinstance(data, str):
            data = data.encode()

        async def go() -> Reply:
            async with (
                aiohttp.ClientSession(auto_decompress=False) as session,
                session.request(
                    method, self.url + path, data=data, headers=sent, skip_auto_headers=AUTO_HEADERS
                ) as response,
            ):
                return Reply(response.status, response.headers, await response.read())

        return asyncio.run(go())

    def sql(self, statement: str, *, db: str = "public", accept: str = "application/json", **kw) -> Reply:
        headers = {"Accept": accept, **kw.pop("headers", {})}
        return self.request("POST", f"/api/v1/sql?db={db}", statement, headers=headers, **kw)

    def ok_sql(self, statement: str, *, db: str = "public", accept: str = "application/json") -> Reply:
        reply = self.sql(statement, db=db, accept=accept)
        assert reply.status == 200, (statement, reply.status, reply.text)
        return reply

    def write(self, lines: str, *, db: str = "public", precision: str | None = None) -> Reply:
        query = f"?db={db}" + (f"&precision={precision}" if precision else "")
        return self.request("POST", "/api/v1/write" + query, lines)

    def new_database(self) -> str:
        name = f"db{next(_names)}"
        self.ok_sql(f"CREATE DATABASE {name}")
        return name


class BackgroundServer:
    """`start_server` on a private event loop in a daemon thread."""

    def __init__(self, engine: Engine, **options) -> None:
        self.engine = engine
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(start_server(engine, **options), self.loop)
        self.running: RunningServer = future.result(timeout=30)
        self.client = Client(self.running.url)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.running.close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()
