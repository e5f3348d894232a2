"""One table's schema and rows in memory: sealed time-sorted chunks plus a memtable, with upsert.

Upsert design (CnosDB merges points of the same series and timestamp, last write wins per field):
- Every row has a key: its tag values (a null as \x01) and its decimal time, joined by NUL.
- The memtable (rows since the last seal, at most `CHUNK_ROWS`) keeps a Python set of its keys, so a new row
  is checked in O(1).  Sealed chunks are sorted by time and carry their min/max time; only chunks whose time
  range overlaps the write are probed, with one `pc.is_in(chunk.time, write_times)` (a hash probe in C over
  that chunk only).  In-order ingest therefore touches no sealed chunk at all, and queries never pay for it.
- A hit merges the stored row into the new one (`coalesce(new, old)` per field) and removes the stored row
  from its chunk, which is replaced by a new version (rewritten on disk at the next checkpoint).
Sealing sorts the memtable by time into chunks of `CHUNK_ROWS` rows (the 64 k-row batches DataFusion scans
fastest), merging a small last chunk first, so small segments are compacted as data arrives.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .lp_exact import BOOL, F64, I64, STRING, TAG, U64

CHUNK_ROWS = 65536
TIME = "TIME"
# Hidden, in-memory only: the table's write number that stored each row (null: loaded at start-up).  With the
# columns' `born` numbers it tells which rows were written before a column existed (quirks mode).
WRITE_COL = "__cnosdb_lite_write"
ARROW = {TAG: pa.string(), STRING: pa.string(), I64: pa.int64(), U64: pa.uint64(), F64: pa.float64(),
         BOOL: pa.bool_()}
SQL_TYPES = {TAG: "STRING", STRING: "STRING", I64: "BIGINT", U64: "BIGINT UNSIGNED", F64: "DOUBLE",
             BOOL: "BOOLEAN"}
_ids = itertools.count(1)
_NULL_TAG = pa.scalar("\x01", pa.string())
_KEY_SEP = pa.scalar("\x00", pa.string())


@dataclass
class Chunk:
    """An immutable, time-sorted batch; `file` is its Parquet file once persisted."""

    batch: pa.RecordBatch
    tmin: int
    tmax: int
    id: int
    file: str | None = None
    view: pa.RecordBatch | None = None     # `batch` as DataFusion scans it (see `query_view`), built lazily


class Table:
    def __init__(self, name: str, time_unit: str, columns: dict[str, str] | None = None) -> None:
        self.name = name
        self.time_type = pa.timestamp(time_unit)
        self.columns: dict[str, str] = {"time": TIME, **(columns or {})}
        self.chunks: list[Chunk] = []
        self.memtable: list[pa.RecordBatch] = []
        self.mem_rows = 0
        self.mem_keys: set[str] = set()
        self.version = 0
        self.writes = 0                          # writes (and INSERTs) applied since start-up
        self.born: dict[str, int] = {}           # column -> the write that added it, for columns added since

    # -- schema -------------------------------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        fields = [(n, self.time_type if k == TIME else ARROW[k]) for n, k in self.columns.items()]
        return pa.schema([*fields, (WRITE_COL, pa.int64())])

    def tags(self) -> list[str]:
        return [n for n, k in self.columns.items() if k == TAG]

    def add_columns(self, new: dict[str, str]) -> None:
        """Widen the schema; existing batches get null columns so that all batches share one schema."""
        if not new:
            return
        self.columns.update(new)
        self.born.update(dict.fromkeys(new, self.writes + 1))   # born with the upsert that follows
        schema = self.schema
        self.chunks = [Chunk(conform(c.batch, schema), c.tmin, c.tmax, c.id, c.file) for c in self.chunks]
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
        if not self.mem_keys.isdisjoint(keys):
            batch = self._merge_memtable(batch, keys)
            keys = self._keys(batch)
        batch, keys = self._merge_chunks(batch, keys)
        self.memtable.append(batch)
        self.mem_rows += batch.num_rows
        self.mem_keys.update(keys)
        self.version += 1
        if self.mem_rows >= CHUNK_ROWS:
            self.seal()

    def _keys(self, batch: pa.RecordBatch) -> list[str]:
        """Each row's upsert key, series and time in one string: the tag values (null as \x01) and the
        decimal time, joined by NUL (one Arrow kernel, one Python str per row; no tuples)."""
        times = batch.column("time").cast(pa.int64()).cast(pa.string())
        tags = [pc.fill_null(batch.column(t), _NULL_TAG) for t in self.tags()]
        return pc.binary_join_element_wise(*tags, times, _KEY_SEP).to_pylist()

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
        mem = pa.Table.from_batches(self.memtable, self.schema).combine_chunks().to_batches()
        old = mem[0] if mem else pa.RecordBatch.from_pylist([], schema=self.schema)
        batch, old = _merge_rows(batch, keys, old, self._keys(old))
        self.memtable = [old]
        self.mem_rows = old.num_rows
        self.mem_keys = set(self._keys(old))
        return batch

    def _merge_chunks(self, batch: pa.RecordBatch, keys: list) -> tuple[pa.RecordBatch, list]:
        times = batch.column("time")
        lo, hi = pc.min_max(times.cast(pa.int64())).values()
        lo, hi = lo.as_py(), hi.as_py()
        chunks: list[Chunk | None] = list(self.chunks)   # None: a chunk whose rows all merged into `batch`
        for i, chunk in enumerate(self.chunks):
            if chunk.tmax < lo or chunk.tmin > hi:
                continue
            mask = pc.is_in(chunk.batch.column("time"), value_set=times)
            if not pc.any(mask).as_py():
                continue
            candidates = chunk.batch.filter(mask)
            old_keys = self._keys(candidates)
            if not set(old_keys) & set(keys):
                continue
            rest = chunk.batch.filter(pc.invert(mask))
            batch, kept = _merge_rows(batch, keys, candidates, old_keys)
            keys = self._keys(batch)
            remaining = pa.Table.from_batches([rest, kept], self.schema)
            remaining = remaining.take(pc.sort_indices(remaining.column("time"))).combine_chunks()
            chunks[i] = _make_chunk(remaining.to_batches()[0]) if remaining.num_rows else None
        self.chunks = [c for c in chunks if c is not None]
        return batch, keys

    def seal(self) -> list[Chunk]:
        """Move the memtable into time-sorted chunks, compacting a small last chunk with it."""
        if not self.memtable:
            return []
        batches = list(self.memtable)
        if self.chunks and self.chunks[-1].batch.num_rows < CHUNK_ROWS // 2:
            batches.insert(0, self.chunks.pop().batch)
        table = pa.Table.from_batches(batches, self.schema)
        table = table.take(pc.sort_indices(table.column("time")))
        new = [_make_chunk(b) for b in table.combine_chunks().to_batches(max_chunksize=CHUNK_ROWS)]
        self.chunks.extend(new)
        self.memtable, self.mem_rows, self.mem_keys = [], 0, set()
        self.version += 1
        return new

    # -- deletes and expiry -------------------------------------------------------------------------------
    def retain(self, keep: pa.Table) -> None:
        """Replace all rows with `keep` (DELETE's survivors)."""
        self.chunks = []
        self.memtable = keep.combine_chunks().to_batches() if keep.num_rows else []
        self.mem_rows = keep.num_rows
        self.mem_keys = set(itertools.chain.from_iterable(self._keys(b) for b in self.memtable))
        self.version += 1
        self.seal()

    def drop_ranges(self, ranges: list[tuple[int, int]]) -> bool:
        """Drop the rows whose time lies in one of the `[start, end)` ranges (expired buckets, in the
        table's time unit); True if anything was dropped."""
        if not ranges:
            return False

        def hit(times: pa.Array) -> pa.Array:
            times = times.cast(pa.int64())
            masks = [pc.and_(pc.greater_equal(times, s), pc.less(times, e)) for s, e in ranges]
            return functools.reduce(pc.or_, masks)

        touched = any(c.tmin < e and s <= c.tmax for c in self.chunks for s, e in ranges)
        touched = touched or any(b.num_rows and pc.any(hit(b.column("time"))).as_py() for b in self.memtable)
        if not touched:
            return False
        rows = pa.Table.from_batches([c.batch for c in self.chunks] + self.memtable, self.schema)
        keep = pc.invert(hit(rows.column("time")))
        if pc.all(keep).as_py():
            return False
        self.retain(rows.filter(keep))
        return True

    # -- reads --------------------------------------------------------------------------------------------
    def batches(self) -> list[pa.RecordBatch]:
        """All rows, consolidating the memtable into one batch (many small batches slow DataFusion down)."""
        if len(self.memtable) > 1:
            self.memtable = pa.Table.from_batches(self.memtable, self.schema).combine_chunks().to_batches()
        return [c.batch for c in self.chunks] + self.memtable

    def query_batches(self) -> list[pa.RecordBatch]:
        """`batches()` with string columns as Arrow string views, the form DataFusion filters fastest.

        A view keeps a 4-byte prefix (the whole string up to 12 bytes) inline, so `col = 'x'` over a
        mostly non-matching column rarely touches the string bytes: at 5 M rows trace-ID lookups and
        tag/attribute filters run about 1.5x faster.  The views share the strings' data buffers (extra
        memory: 16 B per string cell); sealed chunks cache theirs.  Query results are cast back to plain
        strings (engine `_plain`), so SQL results and DESCRIBE still say STRING.
        """
        out = []
        for chunk in self.chunks:
            if chunk.view is None:
                chunk.view = query_view(chunk.batch)
            out.append(chunk.view)
        self.batches()
        return out + [query_view(b) for b in self.memtable]

    @property
    def num_rows(self) -> int:
        return sum(c.batch.num_rows for c in self.chunks) + self.mem_rows


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with exactly `schema`'s columns (missing ones null)."""
    n = batch.num_rows
    names = batch.schema.names
    arrays = []
    for f in schema:
        if f.name in names:
            col = batch.column(f.name)
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            arrays.append(col if col.type == f.type else col.cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def query_view(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with its string columns cast to string_view (zero-copy for the string bytes)."""
    schema = batch.schema
    if pa.string() not in schema.types:
        return batch
    arrays = [col.cast(pa.string_view()) if col.type == pa.string() else col for col in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=schema.names)


def _make_chunk(batch: pa.RecordBatch) -> Chunk:
    times = batch.column("time").cast(pa.int64())
    lo, hi = pc.min_max(times).values() if batch.num_rows else (pa.scalar(0), pa.scalar(0))
    return Chunk(batch, lo.as_py() or 0, hi.as_py() or 0, next(_ids))


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
