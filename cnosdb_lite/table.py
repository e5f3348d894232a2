"""One table's schema and rows: Parquet segments on disk (module `segments`) plus a memtable, with upsert.

Upsert design (CnosDB merges points of the same series and timestamp, last write wins per field):
- Every row has a key: its tag values (a null as \x01) and its decimal time, joined by NUL.
- The memtable (rows since the last flush) keeps a Python set of its keys' hashes, so a new row is checked
  in O(1) (a hash hit merges by the exact keys, so a collision costs time, never a row; ints instead of
  the ~100-character keys: 60 instead of 170 bytes per memtable row, 12 MB of a 64 MiB memtable of spans).
  Segments are probed only when the write's time range overlaps theirs and their time bloom filter says
  they may hold one of its times; only then is the segment read and its matching rows compared by key.
- A hit merges the stored row into the new one (`coalesce(new, old)` per field) and removes the stored row
  from its segment, which is replaced by a rewritten file (committed by the next checkpoint).
So no key is ever stored twice, and reads need no de-duplication.  The engine flushes the memtable into
segments (a checkpoint) once it exceeds its size (`Engine(memtable_bytes=...)`) or `CHUNK_ROWS` rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from . import memory
from . import segments as seg
from .lp_exact import BOOL, F64, I64, STRING, TAG, U64
from .segments import Segment

CHUNK_ROWS = 1 << 20           # a table's memtable is flushed at this many rows at the latest
TIME = "TIME"
# Hidden: the table's write number that stored each row (numbers grow across restarts; null in files of
# older versions).  With the columns' `born` numbers it tells which rows were written before a column
# existed (quirks mode); it is never shown.
WRITE_COL = "__cnosdb_lite_write"
ARROW = {TAG: pa.string(), STRING: pa.string(), I64: pa.int64(), U64: pa.uint64(), F64: pa.float64(),
         BOOL: pa.bool_()}
SQL_TYPES = {TAG: "STRING", STRING: "STRING", I64: "BIGINT", U64: "BIGINT UNSIGNED", F64: "DOUBLE",
             BOOL: "BOOLEAN"}
_NULL_TAG = "\x01"                        # a null tag in an upsert key
_KEY_SEP = pa.scalar("\x00", pa.string())
_NO_TAG = pa.scalar(None, pa.string())   # a tag column the batch lacks: null in every row


class Table:
    def __init__(self, name: str, time_unit: str, columns: dict[str, str] | None = None) -> None:
        self.name = name
        self.time_type = pa.timestamp(time_unit)
        self.columns: dict[str, str] = {"time": TIME, **(columns or {})}
        self.segments: list[Segment] = []
        self.memtable: list[pa.RecordBatch] = []
        self.mem_rows = 0
        self.mem_bytes = 0
        self.mem_keys: set[int] = set()          # hashes of the memtable's upsert keys
        self.version = 0
        self.writes = 0                          # writes (and INSERTs) applied, counted across restarts
        self.born: dict[str, int] = {}           # column -> the write that added it, for columns added since
        self._summary: tuple[tuple[int, tuple[str, ...]], pa.Table] | None = None   # tag_summary's cache
        self._schema: pa.Schema | None = None    # `schema`'s cache: columns change only in `add_columns`

    # -- schema -------------------------------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            fields = [(n, self.time_type if k == TIME else ARROW[k]) for n, k in self.columns.items()]
            self._schema = pa.schema([*fields, (WRITE_COL, pa.int64())])
        return self._schema

    def tags(self) -> list[str]:
        return [n for n, k in self.columns.items() if k == TAG]

    def add_columns(self, new: dict[str, str]) -> None:
        """Widen the schema; memtable batches get null columns (segments are read through the schema)."""
        if not new:
            return
        self.columns.update(new)
        self._schema = None
        self.born.update(dict.fromkeys(new, self.writes + 1))   # born with the upsert that follows
        schema = self.schema
        self.memtable = [conform(b, schema) for b in self.memtable]
        self.version += 1

    # -- writes -------------------------------------------------------------------------------------------
    def upsert(self, batch: pa.RecordBatch) -> None:
        """Add rows (already in this table's schema), merging rows whose (series, time) already exist."""
        self.writes += 1
        batch = batch.set_column(batch.schema.get_field_index(WRITE_COL), WRITE_COL,
                                 pa.repeat(pa.scalar(self.writes, pa.int64()), batch.num_rows))
        keys = self._keys(batch)
        if len(set(keys)) < len(keys):
            batch, keys = self._merge_within(batch, keys)
        if not self.mem_keys.isdisjoint(map(hash, keys)):
            batch = self._merge_memtable(batch, keys)
            keys = self._keys(batch)
        batch, keys = self._merge_segments(batch, keys)
        self.memtable.append(batch)
        self.mem_rows += batch.num_rows
        self.mem_bytes += batch.get_total_buffer_size()  # `nbytes` takes 100 µs at 60 columns
        self.mem_keys.update(map(hash, keys))
        self.version += 1
        memory.release_arrow()                   # the parsing's and merging's scratch space

    @property
    def full(self) -> bool:
        return self.mem_rows >= CHUNK_ROWS

    def _keys(self, batch: pa.RecordBatch | pa.Table) -> list[str]:
        """Each row's upsert key, series and time in one string: the tag values (null as \x01) and the
        decimal time, joined by NUL (one Arrow kernel, one Python str per row; no tuples)."""
        times = batch.column("time").cast(pa.int64()).cast(pa.string())
        names = set(batch.column_names)
        tags = [batch.column(t) if t in names else _NO_TAG for t in self.tags()]
        keys = pc.binary_join_element_wise(*tags, times, _KEY_SEP, null_handling="replace",
                                           null_replacement=_NULL_TAG)
        return keys.to_pylist()

    def _merge_within(self, batch: pa.RecordBatch, keys: list) -> tuple[pa.RecordBatch, list]:
        """Rows of one request with the same key become one row, later fields winning."""
        plain = batch.set_column(0, "time", batch.column("time").cast(pa.int64()))
        merged: dict[tuple, dict] = {}
        for key, row in zip(keys, plain.to_pylist(), strict=True):
            old = merged.get(key)
            merged[key] = row if old is None else {c: row[c] if row[c] is not None else old[c] for c in row}
        out = pa.RecordBatch.from_pylist(list(merged.values()), schema=plain.schema)
        return out.set_column(0, "time", out.column("time").cast(batch.schema.field("time").type)), list(merged)

    def _merge_memtable(self, batch: pa.RecordBatch, keys: list) -> pa.RecordBatch:
        old = self._consolidate()
        batch, old = _merge_rows(batch, keys, old, self._keys(old))
        self.memtable = [old]
        self.mem_rows = old.num_rows
        self.mem_bytes = old.get_total_buffer_size()
        self.mem_keys = set(map(hash, self._keys(old)))
        return batch

    def _consolidate(self) -> pa.RecordBatch:
        """The memtable as one batch (many small batches slow DataFusion down)."""
        mem = pa.Table.from_batches(self.memtable, self.schema).combine_chunks().to_batches()
        self.memtable = mem[:1]
        return mem[0] if mem else pa.RecordBatch.from_pylist([], schema=self.schema)

    def _merge_segments(self, batch: pa.RecordBatch, keys: list) -> tuple[pa.RecordBatch, list]:
        times = seg._as_int64(batch.column("time"))
        if not len(times):
            return batch, keys
        lo, hi = (v.as_py() for v in pc.min_max(times).values())
        trace = seg.trace_tag(self.tags())
        for segment in list(self.segments):
            if not segment.overlaps(lo, hi):
                continue
            maybe = segment.may_hold(times)
            if trace is not None and segment.ids is not None and any(maybe):
                maybe = _and_trace(maybe, batch.column(trace).to_pylist(), segment.ids)
            if not any(maybe):
                continue
            at_times = pc.field("time").isin(batch.column("time").filter(pa.array(maybe)))
            # The keys first (a time filter's false hits are common for a large write): the whole rows only on a hit.
            key_columns = [c for c in ("time", *self.tags()) if c in segment.column_names()]
            if set(self._keys(segment.read(columns=key_columns, filter=at_times))).isdisjoint(keys):
                continue
            candidates = conform(segment.read(filter=at_times), self.schema)
            old_keys = self._keys(candidates)
            hit = set(old_keys) & set(keys)
            batch, _ = _merge_rows(batch, keys, candidates, old_keys)
            keys = self._keys(batch)
            self._filter_segment(segment, self._without(hit, candidates.column("time")))
        return batch, keys

    def _without(self, hit: set[str], times: pa.Array) -> Callable[[pa.Table], pa.Table]:
        """A `keep` for `_filter_segment`: the rows whose key is not in `hit` (their times are in `times`)."""
        def keep(rows: pa.Table) -> pa.Table:
            at = pc.indices_nonzero(pc.is_in(rows.column("time"), value_set=times)).to_pylist()
            if not at:
                return rows
            drop = {i for i, key in zip(at, self._keys(rows.take(at)), strict=True) if key in hit}
            return rows.filter(pa.array([i not in drop for i in range(rows.num_rows)])) if drop else rows
        return keep

    def _filter_segment(self, segment: Segment, keep: Callable[[pa.Table], pa.Table]) -> bool:
        """Replace `segment` by a copy without the rows `keep` leaves out, read and written a batch at a
        time (memory: a batch, whatever the segment's size); False, and nothing written, if it keeps all."""
        schema = self.schema

        def parts() -> Iterator[tuple[int, pa.Table]]:
            for batch in segment.batches():
                rows = pa.Table.from_batches([conform(batch, schema)])
                yield rows.num_rows, keep(rows)

        if all(n == kept.num_rows for n, kept in parts()):
            return False
        at = self.segments.index(segment)
        self.segments[at:at + 1] = seg.write_filtered(segment, (kept for _, kept in parts()), self.tags())
        self.version += 1
        return True

    def replace_segments(self, old: list[Segment], new: list[Segment]) -> bool:
        """Put `new` in the place of `old` (a compaction) if `old` are all still this table's."""
        if not all(any(s is o for s in self.segments) for o in old):
            return False
        at = min(i for i, s in enumerate(self.segments) if any(s is o for o in old))
        rest = [s for s in self.segments if not any(s is o for o in old)]
        self.segments = rest[:at] + new + rest[at:]
        self.version += 1
        return True

    def flush(self, directory: Path) -> list[Segment]:
        """Write the memtable out as segments (fsynced; the caller commits them in a manifest)."""
        if not self.memtable:
            return []
        rows = forget_writes(pa.Table.from_batches(self.memtable, self.schema), self.write_floor())
        new = seg.write(directory, rows, self.tags(), _unit_ns(self.time_type))
        self.segments.extend(new)
        self.memtable, self.mem_rows, self.mem_bytes, self.mem_keys = [], 0, 0, set()
        self.version += 1
        return new

    def write_floor(self) -> int:
        """The write number below which a row's need not be stored (`forget_writes`): quirks mode compares
        a row's number only with the `born` numbers of the columns added since start-up, which are all at
        least this one (a column added later is born after every stored row), and reads no number as 0."""
        return min(self.born.values(), default=self.writes + 1)

    # -- deletes and expiry -------------------------------------------------------------------------------
    def clear(self) -> None:
        """Drop every row (DELETE without WHERE)."""
        self.segments = []
        self.memtable, self.mem_rows, self.mem_bytes, self.mem_keys = [], 0, 0, set()
        self.version += 1

    def rewrite(self, keep: Callable[[pa.Table], pa.Table], skip: Callable[[Segment], bool] | None = None,
                drop: Callable[[Segment], bool] | None = None) -> bool:
        """Keep, of every segment and of the memtable, the rows `keep` returns; one segment at a time.
        `skip`: segments surely untouched; `drop`: segments surely wholly removed.  True if rows went."""
        changed = False
        for segment in list(self.segments):
            if skip is not None and skip(segment):
                continue
            if drop is not None and drop(segment):
                self.segments.remove(segment)
                self.version += 1
                changed = True
                continue
            changed = self._filter_segment(segment, keep) or changed
        if self.memtable:
            mem = self._consolidate()
            kept = keep(pa.Table.from_batches([mem]))
            if kept.num_rows < mem.num_rows:
                batches = kept.combine_chunks().to_batches()
                self.memtable = [conform(b, self.schema) for b in batches]
                self.mem_rows, self.mem_bytes = kept.num_rows, kept.get_total_buffer_size()
                self.mem_keys = set(map(hash, self._keys(kept)))
                self.version += 1
                changed = True
        return changed

    def drop_ranges(self, ranges: list[tuple[int, int]]) -> bool:
        """Drop the rows whose time lies in one of the `[start, end)` ranges (expired buckets, in the
        table's time unit); whole segments inside a range go without being read.  True if anything was
        dropped."""
        if not ranges:
            return False

        def hit(times: pa.Array | pa.ChunkedArray) -> pa.Array:
            times = times.cast(pa.int64())
            masks = [pc.and_(pc.greater_equal(times, s), pc.less(times, e)) for s, e in ranges]
            return functools.reduce(pc.or_, masks)

        return self.rewrite(lambda rows: rows.filter(pc.invert(hit(rows.column("time")))),
                            skip=lambda sg: not any(sg.tmin < e and s <= sg.tmax for s, e in ranges),
                            drop=lambda sg: any(s <= sg.tmin and sg.tmax < e for s, e in ranges))

    # -- reads --------------------------------------------------------------------------------------------
    def memtable_batches(self) -> list[pa.RecordBatch]:
        """The memtable, consolidated into one batch."""
        if len(self.memtable) > 1:
            self._consolidate()
        return list(self.memtable)

    def scan(self, segments: list[Segment], memtable: list[pa.RecordBatch], columns: list[str]
             ) -> Iterator[pa.Table]:
        """`columns` of the given segments (read one at a time) and memtable batches."""
        schema = pa.schema([self.schema.field(c) for c in columns])
        for segment in segments:
            present = set(segment.column_names())
            yield pa.Table.from_batches([conform(segment.read([c for c in columns if c in present]), schema)])
        for batch in memtable:
            yield pa.Table.from_batches([batch.select(columns)])

    def tag_summary(self, tags: list[str]) -> pa.Table | None:
        """The distinct combinations of `tags` over all rows, from the segments' summaries and the memtable
        (module `segments`); None when a segment's summary does not cover them."""
        if self._summary is not None and self._summary[0] == (self.version, tuple(tags)):
            return self._summary[1]
        parts = []
        for segment in self.segments:
            if segment.summary is None or not all(t in segment.summary.column_names for t in tags):
                return None
            parts.append(segment.summary.select(tags))
        schema = pa.schema([(t, pa.string()) for t in tags])
        mem = pa.Table.from_batches(self.memtable_batches(), self.schema).select(tags)
        parts.append(mem.group_by(tags, use_threads=False).aggregate([]) if tags else mem)
        combined = pa.concat_tables([p.cast(schema) for p in parts])
        out = combined.group_by(tags, use_threads=False).aggregate([]).select(tags) if tags else combined
        self._summary = ((self.version, tuple(tags)), out)
        return out

    @property
    def num_rows(self) -> int:
        return sum(s.rows for s in self.segments) + self.mem_rows


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with exactly `schema`'s columns (missing ones null)."""
    n = batch.num_rows
    names = set(batch.schema.names)
    nulls: dict[pa.DataType, pa.Array] = {}      # one all-null array per type, shared by the missing columns
    arrays = []
    for f in schema:
        if f.name in names:
            col = batch.column(f.name)
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            arrays.append(col if col.type == f.type else col.cast(f.type))
        else:
            missing = nulls.get(f.type)
            if missing is None:
                missing = nulls[f.type] = pa.nulls(n, f.type)
            arrays.append(missing)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _and_trace(maybe: list[bool], traces: list[str | None], index: seg.TraceIndex) -> list[bool]:
    """`maybe` (rows a segment's time filter may hold) narrowed to the rows whose trace the segment may hold too:
    a row's key includes its trace ID, and the trace filter's false hits are rare (a time filter's are not, for
    a write of many rows). A row without a trace ID stays as it was."""
    known: dict[str, bool] = {}
    narrowed = []
    for may, trace in zip(maybe, traces, strict=True):
        if may and trace is not None:
            held = known.get(trace)
            if held is None:
                held = known[trace] = index.may_hold(trace)
            may = held
        narrowed.append(may)
    return narrowed


def forget_writes(rows: pa.Table, floor: int) -> pa.Table:
    """`rows` with the write numbers below `floor` (`Table.write_floor`) null: a segment then stores the
    column as nothing, not as a number per row (0.24 B/span at 1 M spans written 1,000 per request)."""
    at = rows.schema.get_field_index(WRITE_COL)
    if at < 0:
        return rows
    writes = rows.column(at)
    return rows.set_column(at, WRITE_COL, pc.if_else(pc.less(writes, floor), pa.nulls(len(writes), pa.int64()), writes))


def _unit_ns(time_type: pa.TimestampType) -> int:
    return {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}[time_type.unit]


def _merge_rows(new: pa.RecordBatch, new_keys: list, old: pa.RecordBatch, old_keys: list
                ) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """Merge old rows into the new rows with the same key; returns (merged new batch, old rows not hit)."""
    position = {k: i for i, k in enumerate(new_keys)}
    hit_old, hit_new, keep = [], [], []
    for j, k in enumerate(old_keys):
        i = position.get(k)
        if i is None:
            keep.append(j)
        else:
            hit_old.append(j)
            hit_new.append(i)
    if not hit_old:
        return new, old
    old_rows = old.take(pa.array(hit_old, pa.int64()))
    new_rows = new.take(pa.array(hit_new, pa.int64()))
    merged = [pc.coalesce(new_rows.column(n), old_rows.column(n)) for n in new.schema.names]
    replaced = pa.RecordBatch.from_arrays(merged, schema=new.schema)
    others = sorted(set(range(new.num_rows)) - set(hit_new))
    rest = new.take(pa.array(others, pa.int64()))
    out = pa.Table.from_batches([rest, replaced]).combine_chunks().to_batches()
    return (out[0] if out else rest), old.take(pa.array(keep, pa.int64()))
