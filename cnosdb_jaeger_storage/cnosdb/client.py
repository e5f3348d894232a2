"""CnosDB's HTTP API as this server uses it: SQL in, rows out; line protocol in.

One pooled aiohttp session, Basic auth, tenant and database as query parameters; gzip request and
response bodies if `compress` (the server turns it off for a CnosDB on loopback or embedded, where gzip only
costs CPU: see `Config.compress`). Errors come back as `CnosDBError` carrying CnosDB's own code and message.
"""

from __future__ import annotations

import calendar
import gzip
import json
import time
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from ..errors import CnosDBError, CnosDBTimeout, CnosDBUnavailable
from ..metrics import METRICS

TIME_COLUMN = "time"


def parse_timestamp_ns(text: str) -> int:
    """CnosDB renders a TIMESTAMP(NANOSECOND) as '2023-07-28T02:12:11.000000123' (UTC, no zone)."""
    whole, _, fraction = text.partition(".")
    seconds = calendar.timegm(datetime.fromisoformat(whole).timetuple())
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)


class CnosDB(Protocol):
    """What the server needs of a CnosDB: `CnosDBClient` (its HTTP API) or `InProcessCnosDB` (the embedded one)."""

    async def sql(self, statement: str, *, tenant: str, database: str) -> list[dict[str, Any]]: ...

    async def write(self, lines: str, *, tenant: str, database: str) -> None: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class CnosDBClient:
    def __init__(self, url: str, user: str, password: str, *, compress: bool = True,
                 timeout: float = 30.0) -> None:
        self._base = url.rstrip("/")
        self._auth_header = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self._compress = compress
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._auth_header, timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=60))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def sql(self, statement: str, *, tenant: str, database: str) -> list[dict[str, Any]]:
        """Run one statement; rows as dicts without their null columns, `time` as int nanoseconds."""
        body = await self._post("/api/v1/sql", statement.encode(), tenant, database,
                                {"Accept": "application/json",
                                 "Accept-Encoding": "gzip" if self._compress else "identity"}, "query")
        if not body:
            return []
        rows: list[dict[str, Any]] = json.loads(body)
        for row in rows:
            stamp = row.get(TIME_COLUMN)
            if isinstance(stamp, str):
                row[TIME_COLUMN] = parse_timestamp_ns(stamp)
        return rows

    async def write(self, lines: str, *, tenant: str, database: str) -> None:
        """Write line protocol (nanosecond timestamps); returns once CnosDB acknowledged it."""
        data = lines.encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self._compress:
            data = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        await self._post("/api/v1/write", data, tenant, database, headers, "write", precision="ns")

    async def ping(self) -> bool:
        try:
            async with self._http().get(self._base + "/api/v1/ping") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    async def _post(self, path: str, data: bytes, tenant: str, database: str,
                    headers: dict[str, str], kind: str, **params: str) -> bytes:
        started = time.perf_counter()
        try:
            async with self._http().post(self._base + path, data=data, headers=headers,
                                         params={"tenant": tenant, "db": database, **params}) as response:
                body = await response.read()
        except TimeoutError as exc:
            METRICS.cnosdb_errors.inc(kind=kind, code="timeout")
            raise CnosDBTimeout(self._timeout.total or 0, doing=f"{kind} {self._base}") from exc
        except aiohttp.ClientError as exc:
            METRICS.cnosdb_errors.inc(kind=kind, code="unreachable")
            raise CnosDBUnavailable(f"{type(exc).__name__}: {exc}", doing=f"{kind} {self._base}") from exc
        finally:
            METRICS.cnosdb_seconds.observe(time.perf_counter() - started, kind=kind)
        if response.status != 200:
            code, message = _error_of(body)
            METRICS.cnosdb_errors.inc(kind=kind, code=code or str(response.status))
            raise CnosDBError(response.status, code, message, doing=kind)
        return body


def _error_of(body: bytes) -> tuple[str, str]:
    try:
        payload = json.loads(body)
        return str(payload["error_code"]), str(payload["error_message"])
    except (ValueError, KeyError, TypeError):
        return "", body.decode(errors="replace")[:500]
