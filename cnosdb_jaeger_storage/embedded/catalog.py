"""Tenants, databases and their options, as CnosDB keeps them in its meta service.

Durations follow CnosDB's `CnosDuration::new`: a bare integer is days, `INF` is infinite, anything else is
humantime text (`7d`, `5h`, `1y`, `1d12h`).  DESCRIBE DATABASE prints them back in humantime's format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import sql_parser
from .table import Table

DEFAULT_TENANT = "cnosdb"
DEFAULT_DATABASE = "public"
NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000}
_UNITS = {
    "nsec": 1, "ns": 1, "usec": 10**3, "us": 10**3, "msec": 10**6, "ms": 10**6,
    "seconds": 10**9, "second": 10**9, "sec": 10**9, "s": 10**9,
    "minutes": 60 * 10**9, "minute": 60 * 10**9, "min": 60 * 10**9, "m": 60 * 10**9,
    "hours": 3600 * 10**9, "hour": 3600 * 10**9, "hr": 3600 * 10**9, "h": 3600 * 10**9,
    "days": 86400 * 10**9, "day": 86400 * 10**9, "d": 86400 * 10**9,
    "weeks": 7 * 86400 * 10**9, "week": 7 * 86400 * 10**9, "w": 7 * 86400 * 10**9,
    "months": 2_630_016 * 10**9, "month": 2_630_016 * 10**9, "M": 2_630_016 * 10**9,
    "years": 31_557_600 * 10**9, "year": 31_557_600 * 10**9, "y": 31_557_600 * 10**9,
}
_PART_RE = re.compile(r"\s*(\d+)\s*([A-Za-z]+)")
_FORMAT_UNITS = [("year", 31_557_600 * 10**9), ("month", 2_630_016 * 10**9), ("day", 86400 * 10**9),
                 ("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6), ("us", 10**3),
                 ("ns", 1)]


def parse_duration(text: str) -> int | None:
    """Nanoseconds of a CnosDB duration option; None for INF."""
    t = text.strip()
    if t.upper() == "INF":
        return None
    if t.isdigit():
        return int(t) * 86400 * 10**9
    total, pos = 0, 0
    for m in _PART_RE.finditer(t):
        if m.start() != pos or m.group(2) not in _UNITS:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(t) or pos == 0:
        raise sql_parser(f"'{text}' is not a valid duration or 'INF'")
    return total


def format_duration(ns: int | None) -> str:
    if ns is None:
        return "INF"
    if ns == 0:
        return "0s"
    parts = []
    for name, size in _FORMAT_UNITS:
        q, ns = divmod(ns, size)
        if q:
            plural = "s" if q > 1 and name in ("year", "month", "day") else ""
            parts.append(f"{q}{name}{plural}")
    return " ".join(parts)


@dataclass
class DatabaseOptions:
    ttl_ns: int | None = None
    shard: int = 1
    vnode_duration_ns: int | None = 31_557_600 * 10**9
    replica: int = 1
    precision: str = "ns"
    max_memcache_size: str = "128 MiB"
    memcache_partitions: int = 16
    wal_max_file_size: str = "128 MiB"
    wal_sync: bool = False
    strict_write: bool = False
    max_cache_readers: int = 32

    def describe_row(self) -> dict[str, object]:
        return {"ttl": format_duration(self.ttl_ns), "shard": self.shard,
                "vnode_duration": format_duration(self.vnode_duration_ns), "replica": self.replica,
                "precision": self.precision.upper(), "max_memcache_size": self.max_memcache_size,
                "memcache_partitions": self.memcache_partitions, "wal_max_file_size": self.wal_max_file_size,
                "wal_sync": self.wal_sync, "strict_write": self.strict_write,
                "max_cache_readers": self.max_cache_readers}

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> DatabaseOptions:
        return cls(**data)


@dataclass
class Database:
    name: str
    options: DatabaseOptions = field(default_factory=DatabaseOptions)
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def time_unit(self) -> str:
        return self.options.precision

    def cutoff(self, now_ns: int) -> int | None:
        """Oldest time (in the database's unit) a row may have under the TTL; None when infinite."""
        if self.options.ttl_ns is None:
            return None
        return (now_ns - self.options.ttl_ns) // NS_PER[self.options.precision]
