"""Background compaction: small segments of a time partition are merged into large ones.

Policy (size-tiered): segments of one table and one time partition (module `segments`) are grouped in
tiers of about 4x rows each (`tier`); a tier that holds `FANIN` segments or more is merged, up to
`2 * FANIN` of them and `MAX_ROWS` rows.  Each segment is merged O(log n) times, so write amplification
stays small.  A partition older than the table's newest one (writes have moved on) is merged into one
segment (up to `MAX_ROWS`; late rows wait until they are an eighth of it): a trace lookup then opens
about one file per day of data.

A merge runs in its own thread without the engine lock: it reads the input files a batch at a time and
merges them (each is sorted already: `merged`) into a new segment, streamed.  It used DataFusion's
sort-preserving merge before: the session and its runtime kept 120 MB more RSS from the first merge on
(measured ingesting 600 k spans), where this holds about a batch per input; it costs more CPU (3.9
instead of 2.8 s for 800 k spans, most of either in the bloom filters and Parquet encoding), in this
background thread.  Then, under the lock, the new segment replaces the inputs if they are all still the
table's (an upsert, DELETE or TTL expiry may have replaced one meanwhile; the merge is then dropped) and
a checkpoint commits the swap.  Upsert semantics need nothing more: no key is stored twice across
segments (module `table`), so merging never has to choose between rows.  A crash at any point leaves
either the old manifest (the output is an unreferenced file, deleted by the next checkpoint) or the new
one.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from . import memory, storage
from . import segments as seg
from .segments import Segment
from .table import Table, conform, forget_writes

log = logging.getLogger("cnosdb_lite")

FANIN = 4
TIER_BASE_ROWS = 65_536
MAX_ROWS = 16 << 20
MERGE_BATCH_ROWS = 2_048
IDLE_WAKEUP_S = 30.0


def tier(rows: int) -> int:
    """0 below 64 k rows, then one tier per factor of 4."""
    return ((rows // TIER_BASE_ROWS).bit_length() + 1) // 2


def pick(table: Table, unit_ns: int) -> list[Segment] | None:
    """The segments of `table` to merge next, or None."""
    groups: dict[tuple[int, int], list[Segment]] = {}
    partitions: dict[int, list[Segment]] = {}
    for segment in table.segments:
        part = seg.partition(segment.tmin, unit_ns)
        partitions.setdefault(part, []).append(segment)
        groups.setdefault((part, tier(segment.rows)), []).append(segment)
    newest = max(partitions, default=0)
    for part, members in partitions.items():        # a partition new writes have left: one file, if it fits
        total, largest = sum(s.rows for s in members), max(s.rows for s in members)
        worth = (total - largest) * 8 >= largest      # not a whole day rewritten for a few late rows
        if part != newest and len(members) > 1 and total <= MAX_ROWS and worth:
            return members
    for group in groups.values():
        if len(group) < FANIN:
            continue
        chosen: list[Segment] = []
        for segment in sorted(group, key=lambda s: s.rows):
            if len(chosen) == 2 * FANIN or sum(s.rows for s in chosen) + segment.rows > MAX_ROWS:
                break
            chosen.append(segment)
        if len(chosen) >= 2:
            return chosen
    return None


class Stopped(Exception):
    """The engine is closing: a merge in progress gives up (its output file is cleaned up)."""


def merge(inputs: list[Segment], schema: pa.Schema, tags: list[str], path: Path,
          stopping: Callable[[], bool] = lambda: False, write_floor: int = 0) -> Segment:
    """One segment holding the rows of `inputs`, in segment order; the inputs are left as they are.  Write
    numbers below `write_floor` are dropped (`table.forget_writes`)."""
    present: set[str] = set()
    for segment in inputs:
        present.update(segment.column_names())
    schema = pa.schema([f for f in schema if f.name in present])
    keys = [(name, "ascending") for name, _ in seg.sort_key(tags) if name in present]
    streams = [_read(segment, schema, write_floor) for segment in inputs]
    trace = seg.trace_tag(tags)
    ids = _trace_index(inputs) if trace in present else None
    service = seg.index_service(tags)
    stats = _Stats(ids=ids, trace=trace, service=service if service in present else None, stopping=stopping)
    summary = seg.merge_summaries(inputs)
    layout = seg.Layout.of(schema, max(inputs, key=lambda s: s.rows).sample(), seg.plain(tags, summary))
    storage.write_segment(path, schema, stats.track(merged(streams, keys)), seg.ROW_GROUP_ROWS,
                          layout.writer_options())
    return Segment(path, stats.rows, stats.tmin, stats.tmax, summary, ids)


def _read(segment: Segment, schema: pa.Schema, write_floor: int) -> Iterator[pa.RecordBatch]:
    """A merge input's rows in `schema`, `MERGE_BATCH_ROWS` at a time."""
    for batch in segment.batches(MERGE_BATCH_ROWS):
        yield from forget_writes(pa.Table.from_batches([conform(batch, schema)]), write_floor).to_batches()


def merged(streams: list[Iterator[pa.RecordBatch]], keys: list[tuple[str, str]]) -> Iterator[pa.RecordBatch]:
    """The rows of `streams`, each sorted by `keys` (nulls last), as one sorted stream.

    A batch of each input is loaded.  Each round sorts the keys of the rows not yet emitted and emits the
    rows up to the first one that ends its batch: no row still unread sorts before it (its input's next
    rows sort after it, and so do the other inputs' unread rows, which follow their own batch's last row).
    The sort is stable and each input sorted, so what a round emits of a batch is a prefix of what was
    left of it; a batch emitted to its end is replaced by its input's next.  Memory: a batch per input;
    each row is copied once, when emitted."""
    names = [name for name, _ in keys]
    loaded = {i: batch for i, stream in enumerate(streams) if (batch := _next_rows(stream)) is not None}
    while loaded:
        live = list(loaded)
        parts = [loaded[i] for i in live]
        pool = pa.Table.from_batches(parts)
        order = pc.sort_indices(pool.select(names), sort_keys=keys)
        ends = list(itertools.accumulate(part.num_rows for part in parts))
        cut = min(pc.index(order, end - 1).as_py() for end in ends)
        emitted = order.slice(0, cut + 1)
        yield from pool.take(emitted).combine_chunks().to_batches()
        for i, part, end in zip(live, parts, ends, strict=True):
            inside = pc.and_(pc.greater_equal(emitted, end - part.num_rows), pc.less(emitted, end))
            taken = pc.sum(inside.cast(pa.int64())).as_py() or 0
            if taken < part.num_rows:
                loaded[i] = part.slice(taken)
            elif (batch := _next_rows(streams[i])) is not None:
                loaded[i] = batch
            else:
                del loaded[i]


def _next_rows(stream: Iterator[pa.RecordBatch]) -> pa.RecordBatch | None:
    """The next batch of `stream` that has rows; None at its end."""
    return next((batch for batch in stream if batch.num_rows), None)


def _trace_index(inputs: list[Segment]) -> seg.TraceIndex | None:
    """An empty index for the merge of `inputs`, each service's bloom sized for their IDs together."""
    sizes: dict[str, int] = {}
    for segment in inputs:
        if segment.ids is None:
            return None
        for key, bloom in segment.ids.blooms.items():
            sizes[key] = sizes.get(key, 0) + bloom.capacity(seg.IdBloom.SERVICE)
    return seg.TraceIndex.empty(sizes)


@dataclass
class _Stats:
    rows: int = 0
    tmin: int = 2**63 - 1
    tmax: int = -(2**63)
    ids: seg.TraceIndex | None = None
    trace: str | None = None
    service: str | None = None
    stopping: Callable[[], bool] = lambda: False

    def track(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if self.stopping():
                raise Stopped
            lo, hi = pc.min_max(batch.column("time").cast(pa.int64())).values()
            self.tmin, self.tmax = min(self.tmin, lo.as_py()), max(self.tmax, hi.as_py())
            self.rows += batch.num_rows
            if self.ids is not None and self.trace is not None:
                self.ids.add(seg.TraceIndex.pairs(batch, self.service, self.trace))
            yield batch
            if self.rows // seg.ROW_GROUP_ROWS != (self.rows - batch.num_rows) // seg.ROW_GROUP_ROWS:
                memory.release_arrow()          # a row group written: the merge's scratch space


@dataclass
class Job:
    """A table's merge, as the engine hands it out under its lock."""

    table: Table
    inputs: list[Segment]
    schema: pa.Schema
    output: Path                    # where the merged segment goes (the engine keeps it from cleanup)
    write_floor: int = field(init=False)    # the table's, read under the lock (`Table.write_floor`)

    def __post_init__(self) -> None:
        self.write_floor = self.table.write_floor()


class Compactor:
    """The background thread.  `next_job` and `finish` are called with the engine lock held by the
    engine's callbacks; the merge itself runs without it."""

    def __init__(self, next_job: Callable[[], Job | None], finish: Callable[[Job, Segment | None], None]) -> None:
        self._next_job = next_job
        self._finish = finish
        self._wake = threading.Event()
        self._idle = threading.Event()             # set when a pass found nothing to merge
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="cnosdb-lite-compactor", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(IDLE_WAKEUP_S)
            self._wake.clear()
            while not self._stop:
                job = self._next_job()
                if job is None:
                    self._idle.set()
                    break
                output = None
                try:
                    output = merge(job.inputs, job.schema, job.table.tags(), job.output, lambda: self._stop,
                                   job.write_floor)
                except Stopped:
                    self._finish(job, None)
                    break
                except Exception as e:  # an input replaced and deleted meanwhile, a full disk: try later
                    log.warning("event=compaction_failed table=%s error=%r", job.table.name, e)
                    self._finish(job, None)
                    break
                self._finish(job, output)
