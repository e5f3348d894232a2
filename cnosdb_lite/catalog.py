"""Tenants, databases and their options, as CnosDB keeps them in its meta service.

Durations follow CnosDB's `CnosDuration::new`: a bare integer is days, `INF` is infinite, anything else is
humantime text (`7d`, `5h`, `1y`, `1d12h`).  DESCRIBE DATABASE prints them back in humantime's format.

TTL works on buckets, as in CnosDB's meta (`meta/src/store/storage.rs process_create_bucket`,
`meta_tenant.rs locate_replication_set_for_write` / `expired_bucket`, `models/meta_data.rs get_time_range`):
- A bucket is a time range `[start, end)` in the database's precision, one VNODE_DURATION long (default
  1 year = 365.25 days) and aligned on multiples of it counted from the Unix epoch.
- A point goes to the first bucket that contains it.  Only when none does is a bucket created for it, and
  that is refused (`030034 Operation not support: create expired bucket`) when the *point* is older than
  `now - TTL`.  Points are routed one by one in request order, so a bucket an earlier point of the same
  request created takes older points too, and buckets created before a refused point stay.  So a point
  older than the TTL is accepted (and readable) whenever its bucket exists.
- A bucket expires when its `end < now - TTL` (an INF TTL counts as i64::MAX); its rows are then dropped,
  all at once.  Rows older than the TTL thus stay readable until their whole bucket has expired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import durations
from .errors import coordinator_common, not_support, sql_parser
from .table import Table

DEFAULT_TENANT = "cnosdb"
DEFAULT_DATABASE = "public"
NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000}
YEAR_NS = 31_557_600 * 10**9   # CnosDB's YEAR_SECOND (365.25 days), the default VNODE_DURATION
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
Bucket = tuple[int, int]       # [start, end) in the database's time unit


def parse_duration(text: str) -> int | None:
    """Nanoseconds of a CnosDB duration option; None for INF; CnosDB's parser error otherwise."""
    try:
        return durations.parse_duration(text)
    except ValueError as exc:
        raise sql_parser(str(exc)) from None


@dataclass
class DatabaseOptions:
    ttl_ns: int | None = None
    shard: int = 1
    vnode_duration_ns: int | None = YEAR_NS
    replica: int = 1
    precision: str = "ns"
    max_memcache_size: str = "128 MiB"
    memcache_partitions: int = 16
    wal_max_file_size: str = "128 MiB"
    wal_sync: bool = False
    strict_write: bool = False
    max_cache_readers: int = 32
    # The database's buckets in creation order: meta state, not an option, but kept here because the
    # manifest persists the options (CnosDB's meta keeps both under the database's key).  None: not
    # recorded (a manifest from before buckets were kept); derived from the stored rows on first use.
    buckets: list[Bucket] | None = None

    def describe_row(self) -> dict[str, object]:
        return {"ttl": durations.format_duration(self.ttl_ns), "shard": self.shard,
                "vnode_duration": durations.format_duration(self.vnode_duration_ns), "replica": self.replica,
                "precision": self.precision.upper(), "max_memcache_size": self.max_memcache_size,
                "memcache_partitions": self.memcache_partitions, "wal_max_file_size": self.wal_max_file_size,
                "wal_sync": self.wal_sync, "strict_write": self.strict_write,
                "max_cache_readers": self.max_cache_readers}

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatabaseOptions:
        options = cls(**data)
        if options.buckets is not None:
            options.buckets = [(int(start), int(end)) for start, end in options.buckets]
        return options


@dataclass
class Database:
    name: str
    options: DatabaseOptions = field(default_factory=DatabaseOptions)
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def time_unit(self) -> str:
        return self.options.precision

    # -- buckets (module docstring) ---------------------------------------------------------------------
    def _in_unit(self, ns: int | None) -> int:
        """A duration in the database's precision; INF is i64::MAX (`CnosDuration::to_precision`)."""
        return I64_MAX if ns is None else min(ns // NS_PER[self.options.precision], I64_MAX)

    def time_to_expired(self, now_ns: int) -> int:
        """The oldest time (database's unit) a new bucket may be created for (`time_to_expired`)."""
        return now_ns // NS_PER[self.options.precision] - self._in_unit(self.options.ttl_ns)

    @property
    def buckets(self) -> list[Bucket]:
        if self.options.buckets is None:
            self.options.buckets = self._derive_buckets()
        return self.options.buckets

    def _derive_buckets(self) -> list[Bucket]:
        """The buckets CnosDB would hold for the stored rows (older manifests did not record them)."""
        duration = self._in_unit(self.options.vnode_duration_ns)
        found: list[Bucket] = []
        for table in self.tables.values():
            for part in table.scan(table.segments, table.memtable, ["time"]):
                times = part.column("time").combine_chunks().cast(pa.int64())
                while len(times):
                    bucket = bucket_range(times[0].as_py(), duration)
                    found.append(bucket)
                    times = times.filter(_outside(times, *bucket))
        return sorted(set(found))

    def locate_buckets(self, times: pa.Array, now_ns: int, refuse_expired: bool = True,
                       ordered: Callable[[], pa.Array] | None = None) -> None:
        """Create the buckets the points `times` (database's unit) need, as CnosDB routes a write.

        `times` may be in any order; `ordered` gives them in request order, asked for only when the
        order can matter (a point older than the TTL that no existing bucket holds).  Raises 030034 for
        the first point, in request order, that would need an expired bucket; buckets created for the
        points before it stay, as in CnosDB.  `refuse_expired=False` (WAL replay) creates them all.
        """
        if not len(times):
            return
        lo, hi = (v.as_py() for v in pc.min_max(times).values())
        buckets = self.buckets
        if any(start <= lo and hi < end for start, end in buckets):
            return
        uncovered = self._uncovered(times, lo, hi)
        if not len(uncovered):
            return
        cutoff = self.time_to_expired(now_ns)
        if refuse_expired and ordered is not None and pc.min(uncovered).as_py() < cutoff:
            uncovered = self._uncovered(ordered(), lo, hi)
        duration = self._in_unit(self.options.vnode_duration_ns)
        while len(uncovered):
            ts = uncovered[0].as_py()
            if refuse_expired and ts < cutoff:
                raise not_support("create expired bucket")
            bucket = bucket_range(ts, duration)
            if not bucket[0] <= ts < bucket[1]:  # the last nanosecond: a bucket's end saturates at i64::MAX
                raise coordinator_common(f"timestamp {ts} is beyond the last bucket")
            buckets.append(bucket)
            uncovered = uncovered.filter(_outside(uncovered, *bucket))

    def _uncovered(self, times: pa.Array, lo: int, hi: int) -> pa.Array:
        """The points of `times` no existing bucket holds, in their order."""
        for start, end in self.buckets:
            if start <= hi and lo < end:
                times = times.filter(_outside(times, start, end))
        return times

    def expire_buckets(self, now_ns: int) -> list[Bucket]:
        """Drop the expired buckets; returns the time ranges whose rows go with them (the parts of their
        ranges no remaining bucket covers -- buckets overlap only after VNODE_DURATION was altered)."""
        cutoff = self.time_to_expired(now_ns)
        buckets = self.buckets
        expired = [b for b in buckets if b[1] < cutoff]
        if not expired:
            return []
        self.options.buckets = kept = [b for b in buckets if b[1] >= cutoff]
        ranges = expired
        for start, end in kept:
            ranges = [part for r in ranges for part in _subtract(r, start, end)]
        return ranges


def bucket_range(ts: int, duration: int) -> Bucket:
    """The bucket of `ts`: CnosDB's `get_time_range` (Rust integer division, saturating ends)."""
    if duration <= 0:
        return I64_MIN, I64_MAX
    if ts >= 0:
        start = ts // duration * duration
        return start, min(start + duration, I64_MAX)
    edge = -(-(ts + 1) // duration) * duration   # (ts + 1) / duration truncates toward zero
    return max(edge - duration, I64_MIN), edge


def _outside(times: pa.Array, start: int, end: int) -> pa.Array:
    return pc.or_(pc.less(times, start), pc.greater_equal(times, end))


def _subtract(r: Bucket, start: int, end: int) -> list[Bucket]:
    """`r` minus `[start, end)`."""
    if end <= r[0] or start >= r[1]:
        return [r]
    return [p for p in ((r[0], start), (end, r[1])) if p[0] < p[1]]
