"""Batched, acknowledged writes to CnosDB: of line protocol, or of rows of values to the embedded cnosdb-lite.

Callers `await submit(payload)`; it returns once CnosDB has acknowledged that payload (a write's lines, or its
`span_columns.ColumnarWrite`), or raises. A payload's length is its rows. Writes are
group commits: when no write is in flight, whatever is queued is written at once (no waiting for a fuller
batch); what arrives while a write is in flight is gathered into the next write, of up to `batch_size`
spans. A further write starts beside those in flight only for a full batch (or at close), and never more
than `max_in_flight` at once. An optional `linger` (default 0) makes an idle writer wait that long for a
full batch first, trading latency for larger writes. A failed write is retried with exponential backoff and
jitter while the error is one that can pass (CnosDB unreachable, 5xx, 429); an error that cannot pass (a 422
such as a type conflict) is first retried per caller, so that one caller's bad spans never fail another
caller's. Memory is bounded by `max_pending` spans: beyond it `submit` waits (backpressure) instead of
queueing more.

Re-sending a batch is idempotent: CnosDB upserts a span's row (same series, same time). Still, a write that
timed out may still be running in CnosDB, so its retry first waits as long as the time-out again, rather
than doubling the work of a CnosDB that is already too slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import CnosDBError, CnosDBTimeout, StorageError
from ..metrics import METRICS

log = logging.getLogger(__name__)

Payload = TypeVar("Payload", bound=Sized)
# Stores the payloads of a batch together; raises CnosDBError as CnosDB refuses them.
WriteFn = Callable[[list[Payload]], Awaitable[None]]


def line_protocol(write: Callable[[str], Awaitable[None]]) -> WriteFn[list[str]]:
    """The `BatchWriter` write of line-protocol payloads (lists of lines): one request body of all their lines."""
    async def write_lines(payloads: list[list[str]]) -> None:
        await write("\n".join(line for lines in payloads for line in lines))
    return write_lines


@dataclass
class _Pending(Generic[Payload]):
    payload: Payload
    spans: int  # how many of the payload's rows are spans (the rest index them)
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BatchWriter(Generic[Payload]):
    def __init__(self, write: WriteFn[Payload], *, batch_size: int, max_pending: int, attempts: int,
                 max_in_flight: int = 2, linger: float = 0.0, backoff: float = 0.2, max_backoff: float = 5.0,
                 name: str = "") -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._write = write
        self._batch_size = batch_size
        self._max_in_flight = max_in_flight
        self._linger = linger
        self._max_pending = max_pending
        self._attempts = attempts
        self._backoff, self._max_backoff = backoff, max_backoff
        self._name = name
        self._queue: deque[_Pending[Payload]] = deque()
        self._queued_spans = 0
        self._pending_spans = 0
        self._wake = asyncio.Event()  # something queued, a write done, or closing
        self._full = asyncio.Event()  # a full batch queued, or closing: ends a linger
        self._room = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"batch-writer {self._name}")

    async def close(self) -> None:
        """Write everything queued, then stop."""
        self._closing = True
        self._wake.set()
        self._full.set()
        if self._task is not None:
            await self._task

    async def submit(self, payload: Payload, spans: int | None = None) -> None:
        """Returns once `payload` is stored; `spans` of its rows (all if None) are spans, counted as written."""
        rows = len(payload)
        if not rows:
            return
        if self._closing:
            raise RuntimeError("writer is closed")
        async with self._room:
            # A request larger than the whole budget is admitted alone rather than never.
            await self._room.wait_for(
                lambda: self._pending_spans == 0 or self._pending_spans + rows <= self._max_pending)
            self._pending_spans += rows
        METRICS.pending_spans.inc(rows)
        pending = _Pending(payload, rows if spans is None else spans)
        self._queue.append(pending)
        self._queued_spans += rows
        self._wake.set()
        if self._queued_spans >= self._batch_size:
            self._full.set()
        try:
            await asyncio.shield(pending.done)
        finally:
            async with self._room:
                self._pending_spans -= rows
                self._room.notify_all()
            METRICS.pending_spans.inc(-rows)

    @property
    def in_flight(self) -> int:
        """Writes (batches) now being sent to CnosDB, retries included."""
        return len(self._writes)

    def _may_start(self) -> bool:
        if not self._queue:
            return False
        if not self._writes:
            return True
        return len(self._writes) < self._max_in_flight and (self._queued_spans >= self._batch_size or self._closing)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if self._may_start():
                if self._linger > 0 and not self._writes and self._queued_spans < self._batch_size \
                        and not self._closing:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):  # linger for a fuller batch
                        await asyncio.wait_for(self._full.wait(), self._linger)
                task = asyncio.create_task(self._write_batch(self._take_batch()))
                self._writes.add(task)
                task.add_done_callback(self._write_done)
                continue
            if self._closing and not self._queue and not self._writes:
                return
            await self._wake.wait()

    def _write_done(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        self._wake.set()

    def _take_batch(self) -> list[_Pending[Payload]]:
        batch: list[_Pending[Payload]] = []
        spans = 0
        while self._queue and (not batch or spans + len(self._queue[0].payload) <= self._batch_size):
            pending = self._queue.popleft()
            batch.append(pending)
            spans += len(pending.payload)
        self._queued_spans -= spans
        return batch

    async def _write_batch(self, batch: list[_Pending[Payload]]) -> None:
        try:
            await self._write_with_retry([p.payload for p in batch])
        except CnosDBError as exc:
            if exc.retryable or len(batch) == 1:
                self._fail(batch, exc)
                return
            for pending in batch:  # isolate the caller whose spans CnosDB refuses
                await self._write_batch([pending])
            return
        except Exception as exc:  # a bug must not leave callers waiting forever
            log.exception("unexpected error writing spans")
            self._fail(batch, exc)
            return
        METRICS.spans_written.inc(sum(p.spans for p in batch))
        METRICS.write_batches.inc(outcome="ok")
        for pending in batch:
            if not pending.done.done():
                pending.done.set_result(None)

    def _fail(self, batch: list[_Pending[Payload]], exc: Exception) -> None:
        count = sum(p.spans for p in batch)
        METRICS.write_batches.inc(outcome="failed")
        METRICS.spans_rejected.inc(count, reason="write_failed")
        log.error("write failed spans=%d error=%r", count, str(exc))
        if isinstance(exc, StorageError):
            exc.logged = True
        for pending in batch:
            if not pending.done.done():
                pending.done.set_exception(exc)

    async def _write_with_retry(self, payloads: list[Payload]) -> None:
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                await self._write(payloads)
                return
            except CnosDBError as exc:
                if not exc.retryable or attempt == self._attempts:
                    raise
                METRICS.write_retries.inc()
                log.warning("write retry attempt=%d spans=%d error=%r", attempt, sum(map(len, payloads)),
                            str(exc))
                await asyncio.sleep(max(delay * (0.5 + random.random()),
                                        exc.seconds if isinstance(exc, CnosDBTimeout) else 0))
                delay = min(delay * 2, self._max_backoff)
