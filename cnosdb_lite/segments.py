"""Immutable Parquet segments: how a table's flushed rows are laid out on disk and found again.

A segment is one zstd Parquet file of one table, written once (fsynced, renamed into place) and never changed:
an upsert, DELETE or TTL expiry that touches it writes a replacement and the manifest swaps the names.
- Time partitions: a flush splits rows by UTC day (`PARTITION_NS`, in the table's unit), so a time window
  skips whole files (their min/max time is in the manifest) and TTL drops whole files; compaction merges
  segments of one partition only.
- Order within a segment: by the trace-ID tag when the table has one (a tag named `*trace_id`, as in
  CnosDB's trace layout), then time; otherwise by time.  A trace lookup then touches one row group (and,
  through the page index, one page) of each segment instead of all of them: measured at 1 M spans,
  GetTrace reads ~0.1 MB instead of the whole trace-ID column.  Row groups hold `ROW_GROUP_ROWS` rows.
- Columns: only those that have a value in the segment's rows, plus `time` and the hidden write number;
  queries read segments through a schema of all the table's columns, a missing column being null (union
  by name), so a sparse attribute costs nothing where it is absent.
- Upsert probe: new rows must merge with stored rows of the same series and time (last write wins) wherever
  they are.  Each segment answers "may hold one of these times?" from its min/max time and, once a write
  lands inside that range, from a bloom filter over its times (2 bytes per row, built on first use from the
  time column, kept while the segment lives).  Only a hit reads the segment.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import storage

PARTITION_NS = 86_400 * 10**9
ROW_GROUP_ROWS = 65_536
PAGE_ROWS = 8_192
_BLOOM_BITS_PER_ROW = 16
_MUL1, _MUL2 = pa.scalar(0x9E3779B97F4A7C15, pa.uint64()), pa.scalar(0xC2B2AE3D27D4EB4F, pa.uint64())
_ADD = pa.scalar(0x165667B19E3779F9, pa.uint64())
_ids = itertools.count(1)


@dataclass(eq=False)
class Segment:
    """One Parquet file of a table: where it is and what the manifest records about it."""

    path: Path
    rows: int
    tmin: int
    tmax: int
    id: int = field(default_factory=lambda: next(_ids))
    _bloom: _Bloom | None = field(default=None, repr=False)

    @property
    def file(self) -> str:
        return self.path.name

    def to_json(self) -> storage.JsonObject:
        return {"file": self.file, "rows": self.rows, "tmin": self.tmin, "tmax": self.tmax}

    @classmethod
    def from_json(cls, directory: Path, data: storage.JsonObject) -> Segment:
        return cls(directory / str(data["file"]), int(data["rows"]), int(data["tmin"]), int(data["tmax"]))

    def overlaps(self, lo: int, hi: int) -> bool:
        return self.tmin <= hi and lo <= self.tmax

    def may_hold(self, times: pa.Array) -> list[bool]:
        """Per time (int64, the table's unit): False if the segment surely has no row at that time."""
        if self._bloom is None:
            self._bloom = _Bloom(_as_int64(pq.read_table(self.path, columns=["time"]).column("time")), self.rows)
        return self._bloom.test(times)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.path, columns=columns)

    def column_names(self) -> list[str]:
        return pq.read_schema(self.path).names


def _as_int64(times: pa.Array | pa.ChunkedArray) -> pa.Array:
    arr = times.cast(pa.int64())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _positions(times: pa.Array, bits: int) -> list[pa.Array]:
    """Two bit positions per time in a filter of 2**bits bits (multiplicative hashing, wrapping in u64)."""
    h = times.cast(pa.uint64(), safe=False)
    shift = pa.scalar(64 - bits, pa.uint64())
    first = pc.shift_right(pc.multiply(h, _MUL1), shift)
    second = pc.shift_right(pc.add(pc.multiply(h, _MUL2), _ADD), shift)
    return [first.cast(pa.int64()), second.cast(pa.int64())]


class _Bloom:
    """A bloom filter over a segment's times: 16 bits per row, 2 hash functions (~1.4 % false hits)."""

    def __init__(self, times: pa.Array, rows: int) -> None:
        self.bits = max(10, (rows * _BLOOM_BITS_PER_ROW).bit_length())
        self.table = bytearray(1 << (self.bits - 3))
        table = self.table
        for positions in _positions(times, self.bits):
            for p in pc.unique(positions).to_pylist():
                table[p >> 3] |= 1 << (p & 7)

    def test(self, times: pa.Array) -> list[bool]:
        table = self.table
        first, second = (p.to_pylist() for p in _positions(times, self.bits))
        return [bool(table[a >> 3] >> (a & 7) & 1 and table[b >> 3] >> (b & 7) & 1)
                for a, b in zip(first, second, strict=True)]


def partition(time: int, unit_ns: int) -> int:
    """The time partition of a time in a table's unit (counted toward zero, as `write` splits)."""
    per = max(1, PARTITION_NS // unit_ns)
    return abs(time) // per * (1 if time >= 0 else -1)


def sort_key(tags: list[str]) -> list[tuple[str, str]]:
    """The order rows take within a segment (module docstring)."""
    trace = [t for t in tags if t.endswith("trace_id")]
    return [(t, "ascending") for t in trace[:1]] + [("time", "ascending")]


def write(directory: Path, rows: pa.Table, tags: list[str], unit_ns: int) -> list[Segment]:
    """Write `rows` as new segments, one per time partition, each sorted (module docstring); columns
    that are null in every row of a partition are left out of its file."""
    if not rows.num_rows:
        return []
    times = _as_int64(rows.column("time"))
    per = max(1, PARTITION_NS // unit_ns)
    lo, hi = (v.as_py() for v in pc.min_max(times).values())
    if lo // per == hi // per:
        return [_write_one(directory, rows, tags)]
    parts = pc.divide(times, per)              # integer division (toward zero: day -1 and 0 share a file)
    return [_write_one(directory, rows.filter(pc.equal(parts, part)), tags) for part in pc.unique(parts)]


def _write_one(directory: Path, rows: pa.Table, tags: list[str]) -> Segment:
    keys = [k for k in sort_key(tags) if k[0] in rows.column_names]
    rows = rows.take(pc.sort_indices(rows, sort_keys=keys))
    keep = [n for n in rows.column_names if n == "time" or rows.column(n).null_count < rows.num_rows
            or n.startswith("__")]
    rows = rows.select(keep)
    path = directory / storage.new_segment_name()
    storage.write_segment(path, rows.schema, rows.to_batches(), ROW_GROUP_ROWS, PAGE_ROWS)
    lo, hi = pc.min_max(rows.column("time").cast(pa.int64())).values()
    return Segment(path, rows.num_rows, lo.as_py(), hi.as_py())
