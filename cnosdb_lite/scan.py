"""Scan accounting: which series of which table a statement would make CnosDB read, and how.

CnosDB reads a table series by series; its tag index picks the series (CnosDB v2.4.3).  The index narrows the
read when a top-level conjunct is an equality of a tag with a literal, or an IN list / OR chain of 1–3
such equalities on one tag (several such conjuncts intersect).  An IN list or OR chain of 4 or more values
gets the domain "all": every series is read and filtered, as with no tag condition at all.  Time and field
conditions never narrow the series.  SHOW TAG VALUES and SHOW SERIES read the index only.

cnosdb-lite reports this per statement as a `ScanReport` (one `TableScan` per table of every SELECT, union
branches and subqueries included): whether the index narrowed the read, how many series (distinct tag
value combinations) it touched, and how many rows those series hold (before time and field filters).
Counting runs pyarrow over the tag columns of a snapshot of the table; whole-table counts are cached per
table version.  It costs about 1 µs per row for a whole-table count, so it is on only in quirks mode or
when asked for (`Engine(scan_accounting=True)`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .pushdown import Select, TableRef, equality_domain, resolve, selects
from .segments import Segment
from .sql_text import Token
from .table import TAG, Table

HEADER = "x-cnosdb-lite-scan"
MAX_INDEX_VALUES = 3          # IN lists / OR chains up to this many values use the tag index


@dataclass(frozen=True)
class TableScan:
    """One table read: `index` is true when the tag index narrowed the series read (a false `index` is a
    full scan of every series); `index_only` marks an index read without rows (SHOW TAG VALUES)."""

    table: str
    index: bool
    series: int
    rows: int
    index_only: bool = False

    @property
    def full_scan(self) -> bool:
        return not self.index


@dataclass(frozen=True)
class ScanReport:
    sql: str
    scans: tuple[TableScan, ...]

    @property
    def full_scans(self) -> tuple[TableScan, ...]:
        return tuple(s for s in self.scans if s.full_scan)

    def header_value(self) -> str:
        """The `x-cnosdb-lite-scan` header: a JSON array of the scans (ASCII, one line)."""
        return json.dumps([asdict(s) for s in self.scans], separators=(",", ":"))


@dataclass(frozen=True)
class _Read:
    """A planned read of one table, with a snapshot of its rows taken under the engine lock."""

    table: Table
    version: int
    schema: pa.Schema
    segments: tuple[Segment, ...]
    memtable: tuple[pa.RecordBatch, ...]
    domains: dict[str, frozenset[str]] | None
    index_only: bool


class Accountant:
    """Plans reads under the engine lock (`plan_*`, cheap) and counts them outside it (`report`)."""

    def __init__(self) -> None:
        self._whole: dict[int, tuple[int, int, int]] = {}    # id(table) -> (version, series, rows)
        self._lock = threading.Lock()

    def plan_select(self, tokens: list[Token], tables: Mapping[str, Table]) -> list[_Read]:
        reads = []
        for select in selects(tokens):
            for ref in select.tables:
                table = tables.get(ref.name)
                if table is not None:
                    reads.append(self._read(table, _domains(select, ref, tables), index_only=False))
        return reads

    def plan_index_read(self, select: Select, table: Table) -> list[_Read]:
        return [self._read(table, _domains(select, select.tables[0], {table.name: table}), index_only=True)]

    @staticmethod
    def _read(table: Table, domains: dict[str, frozenset[str]] | None, index_only: bool) -> _Read:
        return _Read(table, table.version, table.schema, tuple(table.segments), tuple(table.memtable_batches()),
                     domains, index_only)

    def report(self, sql: str, reads: list[_Read]) -> ScanReport:
        scans = []
        for read in reads:
            series, rows = self._count(read)
            narrowed = read.domains is not None
            scans.append(TableScan(read.table.name, narrowed or read.index_only, series,
                                   0 if read.index_only else rows, read.index_only))
        return ScanReport(sql, tuple(scans))

    def _count(self, read: _Read) -> tuple[int, int]:
        if read.domains is None:
            with self._lock:
                cached = self._whole.get(id(read.table))
            if cached is not None and cached[0] == read.version:
                return cached[1], cached[2]
        tags = [f.name for f in read.schema if read.table.columns.get(f.name) == TAG]
        parts = read.table.scan(list(read.segments), list(read.memtable), tags)
        data = pa.concat_tables([*parts, pa.Table.from_batches([], read.schema).select(tags)])
        if read.domains is not None:
            masks = [pc.is_in(data.column(tag), value_set=pa.array(sorted(values), pa.string()))
                     for tag, values in read.domains.items()]
            mask = masks[0]
            for m in masks[1:]:
                mask = pc.and_(mask, m)
            data = data.filter(mask)
        rows = data.num_rows
        series = data.group_by(tags).aggregate([]).num_rows if tags else min(rows, 1)
        if read.domains is None:
            with self._lock:
                self._whole[id(read.table)] = (read.version, series, rows)
        return series, rows


def _domains(select: Select, ref: TableRef, tables: Mapping[str, Table]) -> dict[str, frozenset[str]] | None:
    """Tag -> values the index narrows the read of `ref` to; None when no conjunct narrows it."""
    out: dict[str, frozenset[str]] = {}
    for conjunct in select.where:
        found = equality_domain(conjunct)
        if found is None:
            continue
        column, values = found
        owner = resolve(select, column, tables)
        if owner is None or owner[0] != ref or owner[1].columns.get(column.name) != TAG:
            continue
        if not 1 <= len(values) <= MAX_INDEX_VALUES:
            continue
        out[column.name] = out.get(column.name, frozenset(values)) & frozenset(values)
    return out or None
