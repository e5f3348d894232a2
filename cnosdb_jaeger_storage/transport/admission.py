"""Admission: one budget of request bytes in flight across every receiver, so that memory is bounded by
configuration (`--max-inflight-bytes`), not by the number of clients.

A request is admitted before its body is read, for its declared length, and grows its share once the body is
decompressed; it holds its bytes until it is answered (its spans are then in the writer's bounded queue or in
CnosDB). Beyond the budget a request waits up to `wait` seconds, then gets its protocol's retryable answer
(OTLP/HTTP 503 with `Retry-After`, gRPC UNAVAILABLE), so that exporters retry instead of failing. A request
larger than the whole budget is admitted alone, when nothing else is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from ..errors import StorageError
from ..metrics import METRICS

RETRY_AFTER_SECONDS = 1


class Overloaded(StorageError):
    """The in-flight budget stayed full while the request waited; the client should retry."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503


class Admission:
    def __init__(self, budget: int, wait: float) -> None:
        self._budget = budget
        self._wait = wait
        self._used = 0
        self._room = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def admit(self, size: int) -> AsyncIterator[Ticket]:
        ticket = Ticket(self)
        try:
            await ticket.grow_to(size)
            yield ticket
        finally:
            if ticket.size:
                async with self._room:
                    self._used -= ticket.size
                    METRICS.inflight_bytes.set(self._used)
                    self._room.notify_all()

    async def reserve(self, ticket: Ticket, more: int) -> None:
        """Add up to `more` bytes to a ticket, waiting for room; Overloaded if none comes in time."""
        more = min(more, self._budget - ticket.size)
        if more <= 0:
            return

        def fits() -> bool:
            return self._used + more <= self._budget or self._used == ticket.size

        async with self._room:
            try:
                await asyncio.wait_for(self._room.wait_for(fits), self._wait)
            except TimeoutError:
                METRICS.requests_overloaded.inc()
                raise Overloaded(f"more than {self._budget} request bytes in flight for {self._wait:g} s; "
                                 f"retry in {RETRY_AFTER_SECONDS} s") from None
            self._used += more
            ticket.size += more
            METRICS.inflight_bytes.set(self._used)


class Ticket:
    """One request's share of the budget."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self.size = 0

    async def grow_to(self, size: int) -> None:
        """Hold `size` bytes in all (waiting for room if needed)."""
        await self._admission.reserve(self, size - self.size)
