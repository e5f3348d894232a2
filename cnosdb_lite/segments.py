"""Immutable Parquet segments: how a table's flushed rows are laid out on disk and found again.

A segment is one zstd Parquet file of one table, written once (fsynced, renamed into place) and never changed:
an upsert, DELETE or TTL expiry that touches it writes a replacement and the manifest swaps the names.
- Time partitions: a flush splits rows by UTC day (`PARTITION_NS`, in the table's unit), so a time window
  skips whole files (their min/max time is in the manifest) and TTL drops whole files; compaction merges
  segments of one partition only.
- Order within a segment: by the trace-ID tag when the table has one (`*trace_id`, as in CnosDB's trace
  layout), then time, so a trace is one run of rows: GetTrace reads one page of `PAGE_ROWS` rows per
  column (the page index prunes the rest).  Sorting by the service tag first (`service` or
  `*service.name`; `SORT_BY_SERVICE = True`) lets FindTraces prune a service's row groups by their
  statistics, but splits a trace into one run per service it crosses.  Measured at 1 M spans over 14
  days, traces of 8 spans across 8 services (as real traces are; `bench.cnosdb_lite`): GetTrace 5.6 ms CPU
  instead of 10.9, the spans of 20 traces (FindTraces' second step) 166 ms instead of 246 (an earlier
  layout), 32.3 B/span on disk instead of 58.1 (a trace's spans are neighbours: its ID repeats and
  the time deltas are small); but the trace IDs of a service and field over the last day 39 ms
  instead of 23, and over all 14 days 118 instead of 49 (790 ms at 10 M).  A benchmark of one-service
  traces had picked the service order.  Row groups hold `ROW_GROUP_ROWS` rows.
- Encodings (`Layout`), chosen per segment from its rows (a flush) or an input's first row group (a merge
  or rewrite), measured on a day of 714 k spans (`bench.cnosdb_lite` at 10 M; 45.1 B/span when every column
  but the IDs had a dictionary): a dictionary only for columns that repeat their values (at most one
  distinct value per two rows: services, names, status codes, the write number); `time` as deltas
  (DELTA_BINARY_PACKED: a trace's spans are close in time; 0.9 instead of 5.1 B/row); other numbers
  BYTE_STREAM_SPLIT (durations 3.0 instead of 4.9, float timestamps 3.1 and 1.7 instead of 5.4 and
  5.1: the high bytes, nearly constant, compress apart from the random low ones) at zstd level 12 (-0.4
  B/span for 10 % more write CPU); the IDs and other many-valued strings DELTA_LENGTH_BYTE_ARRAY (the
  lengths apart from the bytes: span IDs 8.2 instead of 9.3 B/row, near the 8 bytes of a random 64-bit
  ID), the IDs at zstd level 1 (levels 3-12 code random hex 0.4 B/span worse).  Pages of `PAGE_ROWS` =
  4 k rows: 30.6 instead of 31.7 B/span (zstd sees more at once), GetTrace and FindTraces CPU the same
  as with 2 k (8 k: GetTrace +0.5 ms).  45.1 -> 29.8 B/span in all; query CPU unchanged or lower.
- Columns: only those that have a value in the segment's rows, plus `time` and the hidden write number;
  queries read segments through a schema of all the table's columns, a missing column being null (union
  by name), so a sparse attribute costs nothing where it is absent.
- What a segment holds, in memory and in the manifest: its time range, the distinct combinations of its
  few-valued tags (`summarise`: SHOW TAG VALUES reads those, not rows) and bloom filters of its trace IDs
  (`TraceIndex`; one per service in the service order, `index_service`).  A statement whose every SELECT
  pins the trace ID or a summarised tag to literals reads only the segments that may hold them (engine
  `_narrowed`).
- Upsert probe: new rows must merge with stored rows of the same series and time (last write wins) wherever
  they are.  Each segment answers "may hold one of these times?" from its min/max time and, once a write
  lands inside that range, from a bloom filter over its times (2 bytes per row, built on first use from the
  time column, kept while the segment lives).  Only a hit reads the segment.
"""

from __future__ import annotations

import base64
import itertools
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import memory, storage

PARTITION_NS = 86_400 * 10**9
ROW_GROUP_ROWS = 16_384
PAGE_ROWS = 4_096
ZSTD_LEVEL = 3
ZSTD_LEVELS = {"BYTE_STREAM_SPLIT": 12}   # by encoding (module docstring)
ZSTD_LEVEL_IDS = 1
_DICTIONARY_RATIO = 2
SORT_BY_SERVICE = False        # measured both ways (module docstring); a switch for the benchmark
SUMMARY_TAG_VALUES = 1_024
SUMMARY_ROWS = 8_192
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
    summary: pa.Table | None = field(default=None, repr=False)     # see `summarise`
    ids: TraceIndex | None = field(default=None, repr=False)       # its trace IDs, if the table has them
    id: int = field(default_factory=lambda: next(_ids))
    _bloom: _Bloom | None = field(default=None, repr=False)

    @property
    def file(self) -> str:
        return self.path.name

    def to_json(self) -> storage.JsonObject:
        out: storage.JsonObject = {"file": self.file, "rows": self.rows, "tmin": self.tmin, "tmax": self.tmax}
        if self.ids is not None:
            out["traces"] = self.ids.to_json()
        if self.summary is not None:
            out["summary"] = {"tags": self.summary.column_names,
                              "values": [self.summary.column(c).to_pylist() for c in self.summary.column_names]}
        return out

    @classmethod
    def from_json(cls, directory: Path, data: storage.JsonObject) -> Segment:
        summary = data.get("summary")
        table = None if summary is None else pa.table(
            {t: pa.array(v, pa.string()) for t, v in zip(summary["tags"], summary["values"], strict=True)})
        ids = TraceIndex.from_json(data["traces"]) if "traces" in data else None
        return cls(directory / str(data["file"]), int(data["rows"]), int(data["tmin"]), int(data["tmax"]), table, ids)

    def overlaps(self, lo: int, hi: int) -> bool:
        return self.tmin <= hi and lo <= self.tmax

    def may_hold(self, times: pa.Array) -> list[bool]:
        """Per time (int64, the table's unit): False if the segment surely has no row at that time."""
        if self._bloom is None:
            self._bloom = _Bloom(_as_int64(pq.read_table(self.path, columns=["time"]).column("time")), self.rows)
        return self._bloom.test(times)

    def read(self, columns: list[str] | None = None, filter: pc.Expression | None = None) -> pa.Table:
        return pq.read_table(self.path, columns=columns, filters=filter)

    def batches(self, rows: int = ROW_GROUP_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows, `rows` at a time (a row group's worth)."""
        yield from pq.ParquetFile(self.path).iter_batches(batch_size=rows)

    def sample(self) -> pa.Table:
        """Its first row group: what `Layout.of` judges a rewrite or a merge of it by."""
        file = pq.ParquetFile(self.path)
        return file.read_row_group(0) if file.metadata.num_row_groups else file.schema_arrow.empty_table()

    def column_names(self) -> list[str]:
        return pq.read_schema(self.path).names


class IdBloom:
    """A bloom filter over trace IDs: `bits` bits per distinct ID and a number of probes, both by role
    (`SEGMENT`: ~0.05 % false hits, for which segments a lookup opens; `SERVICE`: ~1 %, for its hint)."""

    SEGMENT = (16, 6)
    SERVICE = (10, 4)

    def __init__(self, data: bytes | bytearray, probes: int) -> None:
        self.data = bytearray(data)
        self.bits = len(self.data) * 8
        self.probes = probes

    @classmethod
    def empty(cls, distinct: int, role: tuple[int, int]) -> IdBloom:
        return cls(bytearray(max(64, (distinct * role[0] + 7) // 8)), role[1])

    @classmethod
    def of(cls, values: list[str], role: tuple[int, int]) -> IdBloom:
        bloom = cls.empty(len(values), role)
        bloom.add(values)
        return bloom

    def capacity(self, role: tuple[int, int]) -> int:
        return self.bits // role[0]

    def _probes(self, value: str) -> list[int]:
        raw = value.encode()
        h1, h2 = zlib.crc32(raw), zlib.adler32(raw) | 1
        return [(h1 + k * h2) % self.bits for k in range(self.probes)]

    def add(self, values: Iterable[str | None]) -> None:
        data = self.data
        for value in values:
            if value is not None:
                for p in self._probes(value):
                    data[p >> 3] |= 1 << (p & 7)

    def may_hold(self, value: str) -> bool:
        data = self.data
        return all(data[p >> 3] >> (p & 7) & 1 for p in self._probes(value))


NO_SERVICE = "\x01"     # TraceIndex key of rows without a service, and of every row of a table without one


class TraceIndex:
    """A segment's trace IDs: one `IdBloom` of them all (may the segment hold a trace?) and one per service
    (which services: the engine adds that to the statement, so the scan prunes to those services' rows)."""

    def __init__(self, every: IdBloom, blooms: dict[str, IdBloom]) -> None:
        self.every = every
        self.blooms = blooms

    @classmethod
    def empty(cls, distinct: dict[str, int]) -> TraceIndex:
        return cls(IdBloom.empty(sum(distinct.values()), IdBloom.SEGMENT),
                   {key: IdBloom.empty(n, IdBloom.SERVICE) for key, n in distinct.items()})

    def add(self, pairs: dict[str, list[str]]) -> None:
        for key, traces in pairs.items():
            self.every.add(traces)
            bloom = self.blooms.get(key)
            if bloom is None:
                bloom = self.blooms[key] = IdBloom.empty(len(traces), IdBloom.SERVICE)
            bloom.add(traces)

    @staticmethod
    def pairs(rows: pa.Table | pa.RecordBatch, service: str | None, trace: str) -> dict[str, list[str]]:
        """Service key -> the distinct trace IDs of its rows."""
        if service is None:
            return {NO_SERVICE: [t for t in pc.unique(rows.column(trace)).to_pylist() if t is not None]}
        found = pa.table({"s": rows.column(service), "t": rows.column(trace)}).group_by(
            ["s", "t"], use_threads=False).aggregate([])
        out: dict[str, list[str]] = {}
        for key, value in zip(found.column("s").to_pylist(), found.column("t").to_pylist(), strict=True):
            if value is not None:
                out.setdefault(NO_SERVICE if key is None else key, []).append(value)
        return out

    @classmethod
    def of(cls, pairs: dict[str, list[str]]) -> TraceIndex:
        index = cls.empty({key: len(ids) for key, ids in pairs.items()})
        index.add(pairs)
        return index

    def may_hold(self, trace: str) -> bool:
        return self.every.may_hold(trace)

    def services(self, traces: Iterable[str]) -> set[str]:
        traces = list(traces)
        return {key for key, b in self.blooms.items() if any(b.may_hold(t) for t in traces)}

    def to_json(self) -> storage.JsonObject:
        return {"every": _b64(self.every), "by_service": {key: _b64(b) for key, b in self.blooms.items()}}

    @classmethod
    def from_json(cls, data: storage.JsonObject) -> TraceIndex:
        blooms = {key: IdBloom(base64.b64decode(value), IdBloom.SERVICE[1])
                  for key, value in data["by_service"].items()}
        return cls(IdBloom(base64.b64decode(data["every"]), IdBloom.SEGMENT[1]), blooms)


def _b64(bloom: IdBloom) -> str:
    return base64.b64encode(bytes(bloom.data)).decode()


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


def summarise(rows: pa.Table, tags: list[str]) -> pa.Table:
    """The distinct combinations of a segment's few-valued tags: what SHOW TAG VALUES reads instead of the
    rows (CnosDB answers it from its series index).  Tags are taken fewest values first while a tag has at
    most `SUMMARY_TAG_VALUES` values and the combinations stay within `SUMMARY_ROWS`; trace and span IDs
    never are, a service, span name or kind usually is."""
    counts = sorted((_distinct(rows.column(t)), t) for t in tags)
    chosen: list[str] = []
    combos = pa.table({})
    for n, tag in counts:
        if n > SUMMARY_TAG_VALUES:
            break
        trial = rows.select([*chosen, tag]).group_by([*chosen, tag], use_threads=False).aggregate([])
        if trial.num_rows > SUMMARY_ROWS:
            break
        chosen.append(tag)
        combos = trial
    return combos


def _distinct(values: pa.ChunkedArray) -> int:
    """How many distinct values (null one of them); past `SUMMARY_TAG_VALUES` only a lower bound: the IDs
    are counted in their first `SUMMARY_ROWS` rows, not in a hash table of all of them."""
    first = pc.count_distinct(values.slice(0, SUMMARY_ROWS), mode="all").as_py()
    if first > SUMMARY_TAG_VALUES or len(values) <= SUMMARY_ROWS:
        return first
    return pc.count_distinct(values, mode="all").as_py()


def merge_summaries(segments: list[Segment]) -> pa.Table | None:
    """The summary of a segment merged from `segments`: their tags in common, combined."""
    summaries = [s.summary for s in segments if s.summary is not None]
    if len(summaries) < len(segments):
        return None
    common = [t for t in summaries[0].column_names if all(t in s.column_names for s in summaries)]
    parts = [s.select(common) for s in summaries]
    return pa.concat_tables(parts).group_by(common, use_threads=False).aggregate([]) if common else None


def trace_tag(tags: list[str]) -> str | None:
    """The trace-ID tag of a table in CnosDB's trace layout (a tag named `*trace_id`), if any."""
    return next((t for t in tags if t.endswith("trace_id")), None)


def service_tag(tags: list[str]) -> str | None:
    """The service tag of a table in CnosDB's trace layout (`service` or `*service.name`), if any."""
    return next((t for t in tags if t == "service" or t.endswith("service.name")), None)


def index_service(tags: list[str]) -> str | None:
    """The service tag whose values get a trace-ID bloom filter each in a segment's `TraceIndex`: only in the
    service order, whose service hint reads them (engine `_service_hint`); otherwise one filter serves."""
    return service_tag(tags) if SORT_BY_SERVICE else None


def plain(tags: list[str], summary: pa.Table | None) -> list[str]:
    """Tags written without a dictionary: the many-valued ones (trace and span IDs), which `summarise` left
    out.  A lookup of one trace then decodes a page, not a row group's whole dictionary."""
    if summary is None:
        return []
    return [t for t in tags if t not in summary.column_names]


@dataclass(frozen=True)
class Layout:
    """How a segment's columns are encoded (module docstring, "Encodings"): the columns written with a
    dictionary, the Parquet encoding of the others, and each column's zstd level."""

    dictionary: list[str]
    encodings: dict[str, str]
    levels: dict[str, int]

    @classmethod
    def of(cls, schema: pa.Schema, sample: pa.Table, plain: list[str]) -> Layout:
        """The layout of a segment of `schema` whose rows look like `sample` (a row group's worth, or all of
        them); `plain`: the many-valued tags (`plain`)."""
        dictionary: list[str] = []
        encodings: dict[str, str] = {}
        for f in schema:
            if pa.types.is_timestamp(f.type):
                encodings[f.name] = "DELTA_BINARY_PACKED"
            elif f.name in plain:
                encodings[f.name] = "DELTA_LENGTH_BYTE_ARRAY"
            elif pa.types.is_boolean(f.type):
                continue                            # bit-packed whatever is asked
            elif f.name not in sample.column_names or _few_values(sample.column(f.name)):
                dictionary.append(f.name)
            else:
                encodings[f.name] = "DELTA_LENGTH_BYTE_ARRAY" if pa.types.is_string(f.type) else "BYTE_STREAM_SPLIT"
        levels = {name: ZSTD_LEVELS.get(encodings.get(name, ""), ZSTD_LEVEL) for name in schema.names}
        levels.update(dict.fromkeys(plain, ZSTD_LEVEL_IDS))
        return cls(dictionary, encodings, levels)

    def writer_options(self) -> dict[str, object]:
        """`pyarrow.parquet.ParquetWriter` options (checksums are `storage`'s)."""
        return {"compression": "zstd", "compression_level": self.levels, "max_rows_per_page": PAGE_ROWS,
                "write_page_index": True, "use_dictionary": self.dictionary, "column_encoding": self.encodings}


def _few_values(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a column repeats its values enough for a dictionary to pay: at most one distinct value in
    `_DICTIONARY_RATIO` of its non-null values."""
    present = len(values) - values.null_count
    return pc.count_distinct(values).as_py() * _DICTIONARY_RATIO <= present


def sort_key(tags: list[str]) -> list[tuple[str, str]]:
    """The order rows take within a segment (module docstring)."""
    keys = [t for t in (SORT_BY_SERVICE and service_tag(tags), trace_tag(tags)) if t]
    return [(t, "ascending") for t in keys] + [("time", "ascending")]


def write(directory: Path, rows: pa.Table, tags: list[str], unit_ns: int) -> list[Segment]:
    """Write `rows` as new segments, one per time partition, each sorted (module docstring); columns
    that are null in every row of a partition are left out of its file."""
    if not rows.num_rows:
        return []
    times = _as_int64(rows.column("time"))
    per = max(1, PARTITION_NS // unit_ns)
    lo, hi = (v.as_py() for v in pc.min_max(times).values())
    if lo // per == hi // per:
        return [_write_one(directory, rows, tags, None)]
    parts = pc.divide(times, per)              # integer division (toward zero: day -1 and 0 share a file)
    return [_write_one(directory, rows, tags, pc.indices_nonzero(pc.equal(parts, part))) for part in pc.unique(parts)]


def write_filtered(segment: Segment, parts: Iterable[pa.Table], tags: list[str]) -> list[Segment]:
    """What is left of `segment` (its rows minus some, as `parts` in the table's schema and the segment's
    order), streamed into a new segment with the same columns; none if nothing is left.  The summary is
    recomputed over the same tags; the trace index is kept (a superset only costs a false hit)."""
    schema = pq.read_schema(segment.path)
    summary_tags = segment.summary.column_names if segment.summary is not None else None
    combos: list[pa.Table] = []
    stats = {"rows": 0, "tmin": 2**63 - 1, "tmax": -(2**63)}

    def batches() -> Iterator[pa.RecordBatch]:
        for part in parts:
            if not part.num_rows:
                continue
            if summary_tags is not None:
                combos.append(part.select(summary_tags).group_by(summary_tags, use_threads=False).aggregate([]))
            lo, hi = pc.min_max(part.column("time").cast(pa.int64())).values()
            stats.update(rows=stats["rows"] + part.num_rows, tmin=min(stats["tmin"], lo.as_py()),
                         tmax=max(stats["tmax"], hi.as_py()))
            yield from part.select(schema.names).cast(schema).to_batches()

    path = segment.path.parent / storage.new_segment_name()
    layout = Layout.of(schema, segment.sample(), plain(tags, segment.summary))
    storage.write_segment(path, schema, batches(), ROW_GROUP_ROWS, layout.writer_options())
    if not stats["rows"]:
        path.unlink()
        return []
    summary = None
    if summary_tags:
        summary = pa.concat_tables(combos).group_by(summary_tags, use_threads=False).aggregate([])
        summary = summary.select(summary_tags)
    elif summary_tags is not None:
        summary = pa.table({})
    return [Segment(path, stats["rows"], stats["tmin"], stats["tmax"], summary, segment.ids)]


def _write_one(directory: Path, rows: pa.Table, tags: list[str], at: pa.Array | None) -> Segment:
    """A segment of the rows at indices `at` (None: all), written sorted a row group at a time: the sorted
    rows never exist whole (a flush's peak holds the memtable once, not twice)."""
    index = rows.select([*tags, "time"]) if at is None else rows.select([*tags, "time"]).take(at)
    summary = summarise(index, tags)
    trace = trace_tag(tags)
    ids = None if trace is None else TraceIndex.of(TraceIndex.pairs(index, index_service(tags), trace))
    order = pc.sort_indices(index, sort_keys=sort_key(tags))
    memory.release_arrow()                       # the summary's and the index's hash tables
    if at is not None:
        order = at.take(order)
    rows = rows.select([n for n in rows.column_names if n == "time" or n.startswith("__") or _any(rows.column(n), at)])
    path = directory / storage.new_segment_name()
    layout = Layout.of(rows.schema, rows.take(order.slice(0, ROW_GROUP_ROWS)), plain(tags, summary))
    storage.write_segment(path, rows.schema, _sorted(rows, order), ROW_GROUP_ROWS, layout.writer_options())
    lo, hi = pc.min_max(index.column("time").cast(pa.int64())).values()
    return Segment(path, len(order), lo.as_py(), hi.as_py(), summary, ids)


def _sorted(rows: pa.Table, order: pa.Array) -> Iterator[pa.RecordBatch]:
    """`rows` in `order`, a row group at a time (each one's scratch space handed back)."""
    for start in range(0, len(order), ROW_GROUP_ROWS):
        memory.release_arrow()
        yield from rows.take(order.slice(start, ROW_GROUP_ROWS)).to_batches()


def _any(values: pa.ChunkedArray, at: pa.Array | None) -> bool:
    """Whether `values` (at indices `at`, None: all) has a value."""
    if values.null_count in (0, len(values)):
        return values.null_count == 0 and (at is None or len(at) > 0)
    return at is None or pc.any(pc.is_valid(values).take(at)).as_py()
