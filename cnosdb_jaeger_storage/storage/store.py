"""The storage API: what every transport (Jaeger v1, v2, OTLP, query HTTP) asks of CnosDB.

Contract, shared by all transports:
- `write` returns once CnosDB acknowledged the spans (see `writer.BatchWriter`); spans it refuses to
  store are counted, logged and returned as rejected, never dropped in silence. They go as line protocol, or
  to the embedded cnosdb-lite as rows of values (`cnosdb/span_columns.py`): the same rows.
- `find_traces` yields whole traces (every span of a trace, whatever its time), newest trace first,
  at most `query.limit` traces; a trace is a list of `ResourceSpans` holding only that trace's spans.
- `get_trace` returns an empty list for a trace with no span; the transports decide how to say so.
- A table that does not exist yet (nothing written) reads as empty.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..cnosdb import sql
from ..cnosdb.client import CnosDB
from ..cnosdb.in_process import InProcessCnosDB
from ..cnosdb.line_protocol import AttributeBudget, Encoder
from ..cnosdb.operations_table import OperationsIndex, Point, service_groups, service_of
from ..cnosdb.quoting import check_span_list, check_spans
from ..cnosdb.span_columns import ColumnarWrite, ColumnEncoder, TableRows
from ..errors import CnosDBError, InvalidRequest
from ..metrics import METRICS
from ..model import span_rows, vocabulary
from ..model.jaeger_otlp import group_by_process
from ..model.span_record import TraceRecords, fill_resource_spans
from ..model.stored_names import decode_stored_name
from ..model.trace_query import TraceQuery
from ..proto import model_pb2, trace_pb2
from .writer import BatchWriter

log = logging.getLogger(__name__)

_TABLE_MISSING = re.compile(r"table .*not (found|exist)|not (found|exist).*table", re.IGNORECASE)
# Dependencies read the spans of the window this much at a time. On CnosDB a query costs about the same for any
# slice (it visits every series), so slices are long: 4 h, six queries a day, and a bounded answer each.
_DEPENDENCY_SLICE_NS = 4 * 3600 * 10**9
_FETCH_TRACES_PER_QUERY = 30  # a UNION ALL of 10 IN lists (sql.TRACE_IDS_PER_IN)
# How often the attribute columns of the table are read again (DESCRIBE) before a write: other instances add
# columns too. Searches read them anyway, and what this process's own writes add is known at once.
COLUMNS_REFRESH_SECONDS = 60.0
DEFAULT_MAX_SPAN_ATTRIBUTES = 128  # OpenTelemetry SDKs' default attribute count limit
DEFAULT_MAX_ATTRIBUTE_COLUMNS = 1000


@dataclass(frozen=True)
class Target:
    """Where one tenant's spans live."""

    tenant: str
    database: str
    table: str


@dataclass(frozen=True)
class WriteResult:
    accepted: int
    rejected: int = 0
    message: str = ""


@dataclass(frozen=True)
class FoundTrace:
    trace_id: str  # 32 hex digits
    first_start: int  # unix ns
    last_end: int


@dataclass(frozen=True)
class ServiceSummary:
    name: str
    spans: int
    errors: int


@dataclass(frozen=True)
class TraceSummary:
    """What Jaeger's search page shows of a trace (v2 FindTraceSummaries). The root is the earliest span
    without a parent ('' when the trace has none); orphans are spans whose parent is not in the trace."""

    trace_id: str
    root_service: str
    root_name: str
    first_start: int  # unix ns
    last_end: int
    spans: int
    errors: int
    orphans: int
    services: tuple[ServiceSummary, ...]


Trace = list[trace_pb2.ResourceSpans]


Groups = Iterable[tuple[str, Iterable[Any]]]  # (service, spans) pairs: `OperationsIndex.lines_of`


class TraceStore:
    """`writer` takes line protocol (a `BatchWriter[list[str]]`), or for the embedded cnosdb-lite (an
    `InProcessCnosDB` client) rows of values (a `BatchWriter[ColumnarWrite]`)."""

    def __init__(self, client: CnosDB, target: Target, writer: BatchWriter[Any],
                 min_start_ns: Callable[[], int] | None = None, *,
                 max_span_attributes: int | None = DEFAULT_MAX_SPAN_ATTRIBUTES,
                 max_attribute_columns: int | None = DEFAULT_MAX_ATTRIBUTE_COLUMNS) -> None:
        self._client = client
        self.target = target
        self._writer = writer
        self._min_start_ns = min_start_ns  # the oldest start time CnosDB still accepts, if it has a TTL
        # Which attributes get a column (docs/schema.md, "Attributes beyond the budget"). The budget knows
        # the table's attribute columns from DESCRIBE (`_known_columns`) and from this process's writes.
        self.budget = AttributeBudget(max_span_attributes, max_attribute_columns)
        self._encoder: Encoder | ColumnEncoder = \
            ColumnEncoder(self.budget) if isinstance(client, InProcessCnosDB) else Encoder(self.budget)
        self._operations = OperationsIndex(target.table)
        self._columns_read_at: float | None = None  # monotonic time of the last DESCRIBE, None before it
        self._columns_lock = asyncio.Lock()

    # writes

    async def write(self, resource_spans: Iterable[trace_pb2.ResourceSpans], transport: str) -> WriteResult:
        resource_spans = list(resource_spans)
        check_spans(resource_spans)  # every write path: IDs and times CnosDB can store, else InvalidValue
        kept, expired = self._drop_expired(resource_spans)
        await self._known_columns()
        return await self._submit(self._encoder.encode(self.target.table, kept), service_groups(kept), expired,
                                  transport)

    async def write_jaeger(self, spans: Iterable[model_pb2.Span], transport: str) -> WriteResult:
        """`write` of Jaeger spans, straight to rows: the same rows, checks, metrics and answer as
        `write` of `jaeger_otlp.jaeger_spans_to_resource_spans(spans)`, without building the OTLP messages.
        InvalidRequest for IDs of the wrong length."""
        try:
            groups = group_by_process(spans)
        except ValueError as exc:  # IDs of the wrong length
            raise InvalidRequest(str(exc)) from exc
        for group in groups:
            check_span_list(group.spans)
        expired = 0
        if self._min_start_ns is not None:
            oldest = self._min_start_ns()
            for group in groups:
                views = group.spans
                before = len(views)
                views[:] = [view for view in views if view.start_time_unix_nano >= oldest]
                expired += before - len(views)
            _count_expired(expired)
        await self._known_columns()
        return await self._submit(self._encoder.encode_jaeger(self.target.table, groups),
                                  [(service_of(group.resource), group.spans) for group in groups], expired, transport)

    async def _submit(self, spans: list[str] | TableRows, groups: Groups, expired: int, transport: str) -> WriteResult:
        """Write the span rows of a write (`spans`) and the operations-table rows of its (service, spans) pairs
        (`groups`); its answer."""
        for level, count in self._encoder.take_overflowed().items():
            METRICS.attributes_overflowed.inc(count, level=level)
        written = len(spans.rows) if isinstance(spans, TableRows) else len(spans)
        METRICS.spans_received.inc(written + expired, transport=transport)
        points = await self._store(spans, groups)
        self._operations.remember(points)
        if expired:
            return WriteResult(written, expired, f"{expired} spans older than the database's TTL")
        return WriteResult(written)

    async def _store(self, spans: list[str] | TableRows, groups: Groups) -> list[Point]:
        """Hand the span rows and their operations-table rows to the writer; the index points they carry."""
        if isinstance(spans, TableRows):
            index, points = self._operations.rows_of(groups)
            await self._writer.submit(ColumnarWrite([spans, index]), spans=len(spans.rows))
        else:
            lines, points = self._operations.lines_of(groups)
            await self._writer.submit(spans + lines, spans=len(spans))
        return points

    def _drop_expired(self, resource_spans: Iterable[trace_pb2.ResourceSpans]
                      ) -> tuple[list[trace_pb2.ResourceSpans], int]:
        """Keep spans older than the TTL out of the write: CnosDB refuses a whole write with one point that
        would need a storage bucket already past the TTL, and may keep other old points until their bucket
        expires; either way the client learns which spans were not kept for the retention it asked for."""
        resource_spans = list(resource_spans)
        if self._min_start_ns is None:
            return resource_spans, 0
        oldest = self._min_start_ns()
        expired = 0
        for rs in resource_spans:
            for ss in rs.scope_spans:
                old = [i for i, span in enumerate(ss.spans) if span.start_time_unix_nano < oldest]
                for i in reversed(old):
                    del ss.spans[i]
                expired += len(old)
        _count_expired(expired)
        return resource_spans, expired

    async def purge(self) -> None:
        await self._sql(sql.drop_table(self.target.table))
        await self._sql(sql.drop_table(self._operations.table))
        self._operations.forget()
        self._encoder.reset()
        self._columns_read_at = None

    async def _known_columns(self) -> None:
        """Bring the budget's knowledge of the table's columns up to date, at most every
        `COLUMNS_REFRESH_SECONDS` (only when the budget limits columns)."""
        if not self.budget.limits_columns:
            return
        read_at = self._columns_read_at
        if read_at is not None and time.monotonic() - read_at < COLUMNS_REFRESH_SECONDS:
            return
        async with self._columns_lock:
            if self._columns_read_at != read_at:
                return  # another write read them meanwhile
            try:
                await self.columns()
            except CnosDBError as exc:
                # The write goes on with what is known (at worst the budget's worth of columns too many);
                # the next write reads them again.
                log.warning("cannot read the columns of table=%s for the attribute budget: %s",
                            self.target.table, exc)

    # reads

    async def services(self) -> list[str]:
        """From the operations table (`cnosdb/operations_table.py`), else from the span table's series index."""
        rows = (await self._sql(sql.indexed_services(self._operations.table))
                or await self._sql(sql.services(self.target.table)))
        return sorted(decode_stored_name(r["value"]) for r in rows if "value" in r)

    async def operations(self, service: str, span_kind: str = "") -> list[tuple[str, str]]:
        """(name, Jaeger span kind: '' for unspecified) pairs of a service: from the operations table, else
        from the span table's series index (kind tag), else from a scan of the service's spans."""
        rows = await self._sql(sql.indexed_operations(self._operations.table, service))
        if rows:  # the service is in the operations table: its kinds are all there
            kind = vocabulary.kind_name(span_kind) if span_kind else None
            return [(decode_stored_name(r.get("name", "")), vocabulary.kind_tag(r.get("kind", "")))
                    for r in rows if kind is None or r.get("kind") == kind]
        table = self.target.table
        if span_rows.KIND_TAG not in await self.columns():  # a table written by CnosDB's own trace API
            rows = await self._sql(sql.operations_scan(table, service, span_kind))
            return [(decode_stored_name(r["name"]), vocabulary.kind_tag(r.get("kind", "")))
                    for r in rows if "name" in r]
        if span_kind:
            kinds = [vocabulary.kind_name(span_kind)]
        else:
            kinds = [r["value"] for r in await self._sql(sql.operation_kinds(table, service)) if "value" in r]
        names = await asyncio.gather(*(self._sql(sql.operation_names(table, service, kind)) for kind in kinds))
        pairs = {(decode_stored_name(r["value"]), kind) for kind, rows in zip(kinds, names, strict=True)
                 for r in rows if "value" in r}
        return [(name, vocabulary.kind_tag(kind)) for name, kind in sorted(pairs)]

    async def find_trace_ids(self, query: TraceQuery) -> list[str]:
        columns = await self.columns() if query.attributes else frozenset()
        statement = sql.find_trace_ids(self.target.table, query, columns)
        if statement is None:
            return []
        # A row without a trace ID (CnosDB's own writer can store one) is no trace to return.
        return [r["trace_id"] for r in await self._sql(statement) if r.get("trace_id")]

    async def find_trace_bounds(self, query: TraceQuery) -> list[FoundTrace]:
        trace_ids = await self.find_trace_ids(query)
        if not trace_ids:
            return []
        rows = await self._sql(sql.trace_bounds(self.target.table, trace_ids))
        bounds = {r["trace_id"]: r for r in rows}
        return [FoundTrace(t, int(bounds[t]["first_start"]), int(bounds[t]["last_end"]))
                for t in trace_ids if t in bounds]

    async def find_trace_summaries(self, query: TraceQuery) -> AsyncIterator[list[TraceSummary]]:
        """Summaries of the traces `find_traces` would yield, in its order, a list per group of traces; counted
        by CnosDB (per trace: spans and errors by service, roots, spans whose parent is found), not read."""
        trace_ids = await self.find_trace_ids(query)
        if not trace_ids:
            return
        columns = await self.columns()
        by_status, has_parents = span_rows.STATUS_CODE in columns, span_rows.PARENT_SPAN_ID in columns
        table = self.target.table
        for group in _groups(trace_ids, _FETCH_TRACES_PER_QUERY):
            counts, roots, parented = await asyncio.gather(
                self._sql(sql.trace_summary_counts(table, group, by_status)),
                self._sql(sql.trace_roots(table, group, has_parents)),
                self._sql(sql.trace_parented_spans(table, group)) if has_parents else _no_rows())
            summaries = _summaries(group, counts, roots, parented)
            if summaries:
                yield summaries

    async def find_traces(self, query: TraceQuery) -> AsyncIterator[Trace]:
        async for records in self.find_traces_records(query):
            yield fill_resource_spans(records)

    async def find_traces_records(self, query: TraceQuery) -> AsyncIterator[TraceRecords]:
        """`find_traces`, each trace as records (model/span_record.py), without OTLP messages."""
        async for records in self.get_traces_records(await self.find_trace_ids(query)):
            yield records

    async def get_traces(self, trace_ids: Sequence[str], start: int | None = None, end: int | None = None
                         ) -> AsyncIterator[Trace]:
        """The traces that have spans (that started in the window, if given), in the order asked."""
        async for records in self.get_traces_records(trace_ids, start, end):
            yield fill_resource_spans(records)

    async def get_traces_records(self, trace_ids: Sequence[str], start: int | None = None, end: int | None = None
                                 ) -> AsyncIterator[TraceRecords]:
        """`get_traces`, each trace as records."""
        for group in _groups(trace_ids, _FETCH_TRACES_PER_QUERY):
            by_trace = _group_rows(await self._sql(sql.spans_of_traces(self.target.table, group, start, end)))
            for trace_id in group:
                if trace_id in by_trace:
                    yield span_rows.rows_to_records(by_trace[trace_id])

    async def get_trace(self, trace_id: str, start: int | None = None, end: int | None = None) -> Trace:
        return fill_resource_spans(await self.get_trace_records(trace_id, start, end))

    async def get_trace_records(self, trace_id: str, start: int | None = None, end: int | None = None
                                ) -> TraceRecords:
        """`get_trace` as records."""
        rows = await self._sql(sql.spans_of_traces(self.target.table, [trace_id], start, end))
        return span_rows.rows_to_records(rows) if rows else []

    async def dependencies(self, start: int | None, end: int | None) -> list[tuple[str, str, int]]:
        # Until a span with a parent is written the table has no parent column, and naming it is an error.
        if span_rows.PARENT_SPAN_ID not in await self.columns():
            return []
        table = self.target.table
        calls: Counter[tuple[str, str]] = Counter()
        previous: dict[tuple[str, str], str] = {}
        unresolved: list[tuple[str, str, str]] = []  # (trace, parent span, child service)
        for lo, hi in _slices(start, end, _DEPENDENCY_SLICE_NS):
            rows = await self._sql(sql.span_services(table, lo, hi))
            current = {(r["trace_id"], r["span_id"]): r.get("service", "") for r in rows if "span_id" in r}
            for row in rows:
                if parent := row.get("parent_span_id"):
                    key = (row["trace_id"], parent)
                    service = current.get(key, previous.get(key))
                    if service is None:
                        unresolved.append((*key, row.get("service", "")))
                    else:
                        calls[service, row.get("service", "")] += 1
            previous = current  # a parent started before its child: in this slice or, rarely, the one before
        for group in _groups(sorted({trace for trace, _, _ in unresolved}), _FETCH_TRACES_PER_QUERY):
            rows = await self._sql(sql.span_services_of_traces(table, group))
            services = {(r["trace_id"], r["span_id"]): r.get("service", "") for r in rows if "span_id" in r}
            for trace, parent, child in unresolved:
                if (trace, parent) in services:
                    calls[services[trace, parent], child] += 1
        return [(decode_stored_name(parent), decode_stored_name(child), count)
                for (parent, child), count in sorted(calls.items()) if parent != child]

    async def columns(self) -> frozenset[str]:
        """The table's columns now; asked afresh per search, as other instances may have added some."""
        rows = await self._sql(sql.describe_table(self.target.table))
        columns = frozenset(r["column_name"] for r in rows)
        self.budget.learn(columns)
        self._columns_read_at = time.monotonic()
        return columns

    async def _sql(self, statement: str) -> list[dict[str, Any]]:
        try:
            return await self._client.sql(statement, tenant=self.target.tenant, database=self.target.database)
        except CnosDBError as exc:
            if exc.status == 422 and _TABLE_MISSING.search(exc.message):
                return []  # nothing written yet
            raise


def _count_expired(expired: int) -> None:
    if expired:
        METRICS.spans_rejected.inc(expired, reason="older_than_ttl")
        log.warning("spans rejected reason=older_than_ttl count=%d", expired)


async def _no_rows() -> list[dict[str, Any]]:
    return []


def _summaries(trace_ids: Sequence[str], counts: Sequence[dict[str, Any]], roots: Sequence[dict[str, Any]],
               parented: Sequence[dict[str, Any]]) -> list[TraceSummary]:
    """TraceSummary of each trace that has spans, in the order of `trace_ids`, from the rows of
    `trace_summary_counts`, `trace_roots` and `trace_parented_spans`."""
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for row in counts:
        by_trace.setdefault(row.get("trace_id") or "", []).append(row)
    root_rows: dict[str, list[dict[str, Any]]] = {}
    for row in roots:
        root_rows.setdefault(row.get("trace_id") or "", []).append(row)
    found_parents = {r.get("trace_id"): int(r.get("spans") or 0) for r in parented}
    summaries = []
    for trace_id in trace_ids:
        rows = by_trace.get(trace_id)
        if not rows:
            continue
        services: dict[str, list[int]] = {}
        for row in rows:
            tally = services.setdefault(decode_stored_name(row.get("service") or ""), [0, 0])
            tally[0] += int(row["spans"])
            if row.get("status") == "STATUS_CODE_ERROR":
                tally[1] += int(row["spans"])
        spans = sum(t[0] for t in services.values())
        trace_roots = root_rows.get(trace_id, [])
        root = min(trace_roots, key=lambda r: (int(r["first_start"]), r.get("service") or "", r.get("name") or ""),
                   default={})
        with_parent = spans - sum(int(r["spans"]) for r in trace_roots)
        first_start = min(int(r["first_start"]) for r in rows)
        summaries.append(TraceSummary(
            trace_id=trace_id, root_service=decode_stored_name(root.get("service") or ""),
            root_name=decode_stored_name(root.get("name") or ""),
            first_start=first_start,
            last_end=max((int(r["last_end"]) for r in rows if r.get("last_end") is not None), default=first_start),
            spans=spans, errors=sum(t[1] for t in services.values()),
            orphans=max(0, with_parent - found_parents.get(trace_id, 0)),
            services=tuple(ServiceSummary(name, n, e) for name, (n, e) in sorted(services.items()))))
    return summaries


def _slices(start: int | None, end: int | None, size: int) -> Iterator[tuple[int | None, int | None]]:
    """The window as consecutive inclusive slices of `size` ns; an unbounded window as one slice."""
    if start is None or end is None:
        yield start, end
        return
    while start <= end:
        yield start, min(start + size - 1, end)
        start += size


def _groups(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _group_rows(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[span_rows.TRACE_ID], []).append(row)
    return grouped
