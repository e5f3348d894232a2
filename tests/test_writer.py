"""The batch writer: group commit, acknowledgement only after the write, retries, isolation of refused spans,
backpressure."""

from __future__ import annotations

import asyncio

import pytest

from cnosdb_jaeger_storage.errors import CnosDBError, CnosDBTimeout, CnosDBUnavailable
from cnosdb_jaeger_storage.metrics import METRICS
from cnosdb_jaeger_storage.storage.writer import BatchWriter, line_protocol


class FakeCnosDB:
    """Records each write body; fails the first `unavailable` writes, refuses lines containing 'bad'."""

    def __init__(self, unavailable: int = 0) -> None:
        self.bodies: list[str] = []
        self.unavailable = unavailable
        self.gate: asyncio.Event | None = None
        self.started: list[str] = []  # bodies whose write began, in order
        self.in_flight = self.most_in_flight = 0

    async def write(self, body: str) -> None:
        self.started.append(body)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._write(body)
        finally:
            self.in_flight -= 1

    async def _write(self, body: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.unavailable:
            self.unavailable -= 1
            raise CnosDBUnavailable("connection refused")
        if "bad" in body:
            raise CnosDBError(422, "050001", "column type conflict")
        self.bodies.append(body)


def writer_for(db: FakeCnosDB, **overrides: object) -> BatchWriter[list[str]]:
    options: dict = dict(batch_size=100, max_pending=1000, attempts=4, backoff=0.001)
    options.update(overrides)
    return BatchWriter(line_protocol(db.write), **options)


def run(coro):
    return asyncio.run(coro)


def test_concurrent_submissions_share_one_write_and_are_acknowledged_after_it() -> None:
    async def scenario() -> list[str]:
        db = FakeCnosDB()
        writer = writer_for(db)
        writer.start()
        await asyncio.gather(*(writer.submit([f"line{i}"]) for i in range(10)))
        await writer.close()
        return db.bodies

    bodies = run(scenario())
    assert len(bodies) == 1
    assert sorted(bodies[0].split("\n")) == sorted(f"line{i}" for i in range(10))


def test_batches_never_exceed_batch_size() -> None:
    async def scenario() -> list[str]:
        db = FakeCnosDB()
        writer = writer_for(db, batch_size=5)
        writer.start()
        await asyncio.gather(*(writer.submit([f"a{i}", f"b{i}"]) for i in range(7)))
        await writer.close()
        return db.bodies

    bodies = run(scenario())
    assert all(len(b.split("\n")) <= 5 for b in bodies)
    assert sum(len(b.split("\n")) for b in bodies) == 14


def test_unavailable_cnosdb_is_retried_then_acknowledged() -> None:
    async def scenario() -> FakeCnosDB:
        db = FakeCnosDB(unavailable=2)
        writer = writer_for(db)
        writer.start()
        await writer.submit(["x"])
        await writer.close()
        return db

    retries_before = METRICS.write_retries.value()
    assert run(scenario()).bodies == ["x"]
    assert METRICS.write_retries.value() - retries_before == 2


def test_persistent_failure_reaches_the_caller_and_is_counted() -> None:
    async def scenario() -> None:
        writer = writer_for(FakeCnosDB(unavailable=100), attempts=3)
        writer.start()
        try:
            await writer.submit(["x", "y"])
        finally:
            await writer.close()

    rejected_before = METRICS.spans_rejected.value(reason="write_failed")
    with pytest.raises(CnosDBUnavailable):
        run(scenario())
    assert METRICS.spans_rejected.value(reason="write_failed") - rejected_before == 2


def test_a_refused_caller_does_not_fail_the_others_in_its_batch() -> None:
    async def scenario() -> tuple[list[object], list[str]]:
        db = FakeCnosDB()
        writer = writer_for(db)
        writer.start()
        results = await asyncio.gather(writer.submit(["good1"]), writer.submit(["bad"]), writer.submit(["good2"]),
                                       return_exceptions=True)
        await writer.close()
        return results, db.bodies

    results, bodies = run(scenario())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], CnosDBError) and results[1].code == "050001"
    assert sorted(line for b in bodies for line in b.split("\n")) == ["good1", "good2"]


def test_submit_waits_while_max_pending_spans_are_unwritten() -> None:
    async def scenario() -> tuple[bool, bool]:
        db = FakeCnosDB()
        db.gate = asyncio.Event()
        writer = writer_for(db, batch_size=10, max_pending=10)
        writer.start()
        first = asyncio.create_task(writer.submit([f"a{i}" for i in range(10)]))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(writer.submit(["b"]))
        await asyncio.sleep(0.05)
        blocked = not second.done() and len(db.bodies) == 0
        db.gate.set()
        await asyncio.gather(first, second)
        await writer.close()
        return blocked, sum(len(b.split("\n")) for b in db.bodies) == 11

    blocked, all_written = run(scenario())
    assert blocked
    assert all_written


def test_close_writes_what_is_queued() -> None:
    async def scenario() -> list[str]:
        db = FakeCnosDB()
        writer = writer_for(db, linger=10)
        writer.start()
        task = asyncio.create_task(writer.submit(["late"]))
        await asyncio.sleep(0.01)
        await writer.close()
        await task
        return db.bodies

    assert run(scenario()) == ["late"]


def test_a_write_that_timed_out_is_resent_only_after_the_time_out_again() -> None:
    """CnosDB may still be working on a write it did not answer in time: the retry leaves it that long."""
    async def scenario() -> tuple[list[float], list[str]]:
        attempts: list[float] = []
        stored: list[str] = []

        async def write(body: str) -> None:
            attempts.append(asyncio.get_running_loop().time())
            if len(attempts) == 1:
                raise CnosDBTimeout(0.3)
            stored.append(body)

        writer = BatchWriter(line_protocol(write), batch_size=10, max_pending=100, attempts=3, backoff=0.001)
        writer.start()
        await writer.submit(["a"])
        await writer.close()
        return attempts, stored

    attempts, stored = run(scenario())
    assert stored == ["a"]
    assert attempts[1] - attempts[0] >= 0.3


async def _turns(n: int = 5) -> None:
    """Lets the event loop run every ready task a few times over, without waiting for any clock."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_an_idle_writer_writes_a_single_submission_at_once() -> None:
    async def scenario() -> tuple[list[str], bool, list[str]]:
        db = FakeCnosDB()
        writer = writer_for(db)
        writer.start()
        task = asyncio.create_task(writer.submit(["only"]))
        await _turns()  # no clock time passes: a writer that lingered would not have written yet
        started, done = list(db.started), task.done()
        await task
        await writer.close()
        return started, done, db.bodies

    started, done, bodies = run(scenario())
    assert started == ["only"]
    assert done
    assert bodies == ["only"]


def test_submissions_arriving_while_a_write_is_in_flight_form_the_next_batch() -> None:
    async def scenario() -> tuple[list[str], list[bool], list[str]]:
        db = FakeCnosDB()
        db.gate = asyncio.Event()
        writer = writer_for(db)
        writer.start()
        first = asyncio.create_task(writer.submit(["a"]))
        await _turns()
        later = [asyncio.create_task(writer.submit([line])) for line in ("b", "c", "d")]
        await _turns()
        started = list(db.started)  # a partial batch does not start a second write beside the first
        acknowledged = [t.done() for t in (first, *later)]
        db.gate.set()
        await asyncio.gather(first, *later)
        await writer.close()
        return started, acknowledged, db.bodies

    started, acknowledged, bodies = run(scenario())
    assert started == ["a"]
    assert acknowledged == [False] * 4  # nobody is acknowledged before CnosDB answered
    assert bodies == ["a", "b\nc\nd"]


@pytest.mark.parametrize("most", [1, 2, 3])
def test_at_most_max_in_flight_writes_are_in_flight(most: int) -> None:
    async def scenario() -> tuple[int, int, list[str]]:
        db = FakeCnosDB()
        db.gate = asyncio.Event()
        writer = writer_for(db, batch_size=2, max_in_flight=most)
        writer.start()
        tasks = [asyncio.create_task(writer.submit([f"s{i}"])) for i in range(20)]
        await _turns(20)
        in_flight = writer.in_flight
        db.gate.set()
        await asyncio.gather(*tasks)
        await writer.close()
        return in_flight, db.most_in_flight, db.bodies

    in_flight, most_seen, bodies = run(scenario())
    assert in_flight == most  # full batches were queued: every slot is used
    assert most_seen == most
    assert all(len(b.split("\n")) <= 2 for b in bodies)
    assert sorted(line for b in bodies for line in b.split("\n")) == sorted(f"s{i}" for i in range(20))


def test_a_linger_ends_as_soon_as_a_batch_is_full() -> None:
    async def scenario() -> tuple[list[str], bool]:
        db = FakeCnosDB()
        writer = writer_for(db, batch_size=3, linger=10)
        writer.start()
        lone = asyncio.create_task(writer.submit(["a"]))
        await asyncio.sleep(0.05)
        lingered = not db.started  # an optional linger still waits for a fuller batch
        await asyncio.wait_for(asyncio.gather(lone, writer.submit(["b"]), writer.submit(["c"])), 5)
        await writer.close()
        return db.bodies, lingered

    bodies, lingered = run(scenario())
    assert lingered
    assert bodies == ["a\nb\nc"]
