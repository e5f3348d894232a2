"""Every SQL statement this server sends to CnosDB, built here and nowhere else.

Values and names reach the text only through `quoting`; `tests/test_sql.py` compares each
statement with a golden file under `tests/golden_sql/` and checks the rules below on every one of them.
The SQL stays inside what CnosDB's DataFusion 27 fork runs: WHERE, IN lists, LIKE (without ESCAPE),
UNION ALL, GROUP BY, ORDER BY, LIMIT, inner joins, count/min/max, and CnosDB's `SHOW TAG VALUES`.

Rules that keep the statements correct and cheap on CnosDB's storage engine (not on DataFusion alone):
- A comparison with a field column (LIKE too) is guarded, `"f" IS NOT NULL AND "f" = 'v'`: CnosDB pushes `f = 'v'`
  down as an exact filter that its storage skips for series written before column `f` existed, so
  unguarded, every older span would match. The `IS NOT NULL` stays in DataFusion's filter and drops them.
- An IN list of trace IDs holds at most `TRACE_IDS_PER_IN` values: from four on, CnosDB reads every series.
  More IDs are fetched as a `UNION ALL` of such lists.
- Services and operations come from the series index (`SHOW TAG VALUES`), never from a scan of the rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence

from ..model import span_rows as col
from ..model import vocabulary
from ..model.stored_names import stored_name
from ..model.trace_query import TraceQuery
from . import operations_table as index
from .quoting import sql_identifier as ident
from .quoting import sql_like_containing, sql_timestamp
from .quoting import sql_string as lit

# An attribute column: resource, scope, span, event or link level, then the stored attribute key.
_ATTRIBUTE_COLUMN = col.ATTRIBUTE_COLUMN
_EVENT_NAME_COLUMN = re.compile(r"ResourceSpans/ScopeSpans/Span/Event_\d+/name")

TRACE_IDS_PER_IN = 3  # the most values an IN list of a tag may hold and still use CnosDB's index


def create_database(database: str, ttl: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {ident(database)} WITH TTL {lit(ttl)}"


def describe_database(database: str) -> str:
    return f"DESCRIBE DATABASE {ident(database)}"


def show_databases() -> str:
    return "SHOW DATABASES"


def show_tables() -> str:
    return "SHOW TABLES"


def describe_table(table: str) -> str:
    return f"DESCRIBE TABLE {ident(table)}"


def drop_table(table: str) -> str:
    return f"DROP TABLE IF EXISTS {ident(table)}"


def services(table: str) -> str:
    """Answers `key`, `value` rows, a value per service."""
    return show_tag_values(table, col.SERVICE_NAME)


def indexed_services(operations_table: str) -> str:
    """Services from the operations table (cnosdb/operations_table.py): `key`, `value` rows."""
    return show_tag_values(operations_table, index.SERVICE)


def indexed_operations(operations_table: str, service: str) -> str:
    """A service's (name, kind) pairs from the operations table."""
    name, kind = ident(index.NAME), ident(index.KIND)
    return (f"SELECT {name} AS name, {kind} AS kind FROM {ident(operations_table)} "
            f"WHERE {ident(index.SERVICE)} = {lit(stored_name(service))} "
            f"GROUP BY {name}, {kind} ORDER BY {name}, {kind}")


def operation_kinds(table: str, service: str) -> str:
    """The span kinds a service's spans have, from the kind tag."""
    return show_tag_values(table, col.KIND_TAG, {col.SERVICE_NAME: stored_name(service)})


def operation_names(table: str, service: str, span_kind: str | None = None) -> str:
    """A service's span names, of one span kind (`SPAN_KIND_SERVER`, ...) when `span_kind` is given."""
    where = {col.SERVICE_NAME: stored_name(service)}
    if span_kind is not None:
        where[col.KIND_TAG] = span_kind
    return show_tag_values(table, col.NAME, where)


def show_tag_values(table: str, tag: str, where: Mapping[str, str] | None = None) -> str:
    """Distinct values of one tag column (of the series that match `where`, tag → value) from the index."""
    text = f"SHOW TAG VALUES FROM {ident(table)} WITH KEY = {ident(tag)}"
    if where:
        text += " WHERE " + " AND ".join(f"{ident(c)} = {lit(v)}" for c, v in sorted(where.items()))
    return text


def operations_scan(table: str, service: str, span_kind: str = "") -> str:
    """A service's (name, kind) pairs from its rows: for tables without the kind tag (written by CnosDB)."""
    name, kind = ident(col.NAME), ident(col.KIND)
    where = [f"{ident(col.SERVICE_NAME)} = {lit(stored_name(service))}", f"{name} IS NOT NULL"]
    if span_kind:
        where.append(_field_equals(col.KIND, vocabulary.kind_name(span_kind)))
    return (f"SELECT {name} AS name, {kind} AS kind FROM {ident(table)} WHERE {' AND '.join(where)} "
            f"GROUP BY {name}, {kind} ORDER BY {name}, {kind}")


def find_trace_ids(table: str, query: TraceQuery, columns: Collection[str]) -> str | None:
    """Newest traces with a span matching every condition; None when a condition cannot match."""
    where = _search_conditions(query, columns)
    if where is None:
        return None
    trace_id = ident(col.TRACE_ID)
    return (f"SELECT {trace_id} AS trace_id, max(time) AS newest FROM {ident(table)} "
            f"WHERE {' AND '.join(where)} GROUP BY {trace_id} ORDER BY newest DESC, trace_id "
            f"LIMIT {max(1, int(query.limit))}")


def trace_bounds(table: str, trace_ids: Sequence[str]) -> str:
    """First start and last end of each trace: the time hints of v2 FindTraceIDs."""
    trace_id = ident(col.TRACE_ID)
    return _union_by_trace_ids(trace_ids, lambda in_list: (
        f"SELECT {trace_id} AS trace_id, CAST(min(time) AS BIGINT) AS first_start, "
        f"max(CAST(time AS BIGINT) + CAST({ident(col.DURATION)} AS BIGINT)) AS last_end "
        f"FROM {ident(table)} WHERE {in_list} GROUP BY {trace_id}"))


def trace_summary_counts(table: str, trace_ids: Sequence[str], by_status: bool = True) -> str:
    """Spans, first start and last end of each trace by service and status code (v2 trace summaries); without
    `by_status` (the table has no status column yet) by service only."""
    trace_id, service, status = ident(col.TRACE_ID), ident(col.SERVICE_NAME), ident(col.STATUS_CODE)
    keys = f"{trace_id}, {service}" + (f", {status}" if by_status else "")
    return _union_by_trace_ids(trace_ids, lambda in_list: (
        f"SELECT {trace_id} AS trace_id, {service} AS service{f', {status} AS status' if by_status else ''}, "
        f"count({ident(col.KIND)}) AS spans, CAST(min(time) AS BIGINT) AS first_start, "
        f"max(CAST(time AS BIGINT) + CAST({ident(col.DURATION)} AS BIGINT)) AS last_end "
        f"FROM {ident(table)} WHERE {in_list} GROUP BY {keys}"))


def trace_roots(table: str, trace_ids: Sequence[str], has_parents: bool = True) -> str:
    """The spans without a parent of each trace, by service and name: count and first start. Without
    `has_parents` (the table has no parent column yet) every span is one."""
    trace_id, service, name = ident(col.TRACE_ID), ident(col.SERVICE_NAME), ident(col.NAME)
    no_parent = f" AND {ident(col.PARENT_SPAN_ID)} IS NULL" if has_parents else ""
    return _union_by_trace_ids(trace_ids, lambda in_list: (
        f"SELECT {trace_id} AS trace_id, {service} AS service, {name} AS name, count({ident(col.KIND)}) AS spans, "
        f"CAST(min(time) AS BIGINT) AS first_start FROM {ident(table)} WHERE {in_list}{no_parent} "
        f"GROUP BY {trace_id}, {service}, {name}"))


def trace_parented_spans(table: str, trace_ids: Sequence[str]) -> str:
    """How many spans of each trace have their parent span in the trace (the others with a parent are
    orphans): an inner self-join, each side held to the same few trace IDs."""
    trace_id, span_id, parent = ident(col.TRACE_ID), ident(col.SPAN_ID), ident(col.PARENT_SPAN_ID)
    return _union_by_trace_ids(trace_ids, lambda in_list: (  # in_list: `"<trace ID column>" IN (...)`
        f"SELECT c.{trace_id} AS trace_id, count(c.{ident(col.KIND)}) AS spans FROM {ident(table)} AS c "
        f"JOIN {ident(table)} AS p ON c.{trace_id} = p.{trace_id} AND c.{parent} = p.{span_id} "
        f"WHERE c.{in_list} AND p.{in_list} GROUP BY c.{trace_id}"))


def spans_of_traces(table: str, trace_ids: Sequence[str], start: int | None = None,
                    end: int | None = None) -> str:
    """Every span of the traces (that started in the window, if given), ordered by trace, time, span."""
    window = "".join(f" AND {condition}" for condition in _time_window(start, end))
    select = _union_by_trace_ids(trace_ids, lambda in_list: f"SELECT * FROM {ident(table)} WHERE {in_list}{window}")
    return f"{select} ORDER BY {ident(col.TRACE_ID)}, time, {ident(col.SPAN_ID)}"


def _union_by_trace_ids(trace_ids: Sequence[str], select: Callable[[str], str]) -> str:
    """`select(<trace ID IN list>)` for each group of at most `TRACE_IDS_PER_IN` IDs, in one UNION ALL."""
    trace_id = ident(col.TRACE_ID)
    groups = [trace_ids[i:i + TRACE_IDS_PER_IN] for i in range(0, len(trace_ids), TRACE_IDS_PER_IN)]
    return " UNION ALL ".join(select(f"{trace_id} IN ({_list(group)})") for group in groups)


def span_services(table: str, start: int | None, end: int | None) -> str:
    """Trace, span, parent span and service of the spans that started in the window: what dependencies are
    counted from, a time slice at a time (a self-join of the span table exhausts CnosDB's memory)."""
    return _span_services(table, " AND ".join(_time_window(start, end)) or "TRUE")


def span_services_of_traces(table: str, trace_ids: Sequence[str]) -> str:
    """The same for every span of the traces: to find parents that started before the window."""
    return _union_by_trace_ids(trace_ids, lambda in_list: _span_services(table, in_list))


def _span_services(table: str, where: str) -> str:
    # The duration, a field every span has, keeps this a scan of rows: CnosDB answers a query of tags alone
    # from its series index, which knows no time.
    return (f"SELECT {ident(col.TRACE_ID)} AS trace_id, {ident(col.SPAN_ID)} AS span_id, "
            f"{ident(col.PARENT_SPAN_ID)} AS parent_span_id, {ident(col.SERVICE_NAME)} AS service, "
            f"{ident(col.DURATION)} AS duration FROM {ident(table)} WHERE {where}")


def _search_conditions(query: TraceQuery, columns: Collection[str]) -> list[str] | None:
    where = _time_window(query.start_min, query.start_max)
    if query.service:
        where.append(f"{ident(col.SERVICE_NAME)} = {lit(stored_name(query.service))}")
    if query.operation:
        where.append(f"{ident(col.NAME)} = {lit(stored_name(query.operation))}")
    if query.duration_min is not None:
        where.append(_field_compare(col.DURATION, ">=", str(int(query.duration_min))))
    if query.duration_max is not None:
        where.append(_field_compare(col.DURATION, "<=", str(int(query.duration_max))))
    for key, value in sorted(query.attributes.items()):
        alternatives = _attribute_matches(key, value, columns)
        if not alternatives:
            return None
        where.append("(" + " OR ".join(alternatives) + ")")
    return where or ["TRUE"]


def _attribute_matches(key: str, value: str, columns: Collection[str]) -> list[str]:
    """Where a Jaeger tag `key=value` may live: any attribute level, or the OTLP field it maps to."""
    stored_key = stored_name(key)
    pairs = [(c, stored_name(value) if c in col.TAG_COLUMNS else value) for c in sorted(columns)
             if (m := _ATTRIBUTE_COLUMN.fullmatch(c)) and m.group(1) == stored_key]
    if key == vocabulary.ERROR and value == "true":
        pairs.append((col.STATUS_CODE, "STATUS_CODE_ERROR"))
    elif key == vocabulary.STATUS_CODE and (status := vocabulary.status_name(value)):
        pairs.append((col.STATUS_CODE, status))
    elif key == vocabulary.STATUS_DESCRIPTION:
        pairs.append((col.STATUS_MESSAGE, value))
    elif key == vocabulary.SPAN_KIND and value in vocabulary.KIND_BY_TAG:
        pairs.append((col.KIND_TAG if col.KIND_TAG in columns else col.KIND, vocabulary.kind_name(value)))
    elif key in (vocabulary.SCOPE_NAME, vocabulary.LIBRARY_NAME):
        pairs.append((col.SCOPE_NAME, stored_name(value)))
    elif key in (vocabulary.SCOPE_VERSION, vocabulary.LIBRARY_VERSION):
        pairs.append((col.SCOPE_VERSION, stored_name(value)))
    elif key == vocabulary.TRACE_STATE:
        pairs.append((col.TRACE_STATE, stored_name(value)))
    elif key == vocabulary.EVENT:
        pairs.extend((c, value) for c in sorted(columns) if _EVENT_NAME_COLUMN.fullmatch(c))
    # Only columns the table has: naming a missing column is an error in CnosDB, not a non-match.
    found = [_equals(c, v) for c, v in pairs if c in columns]
    # Attributes beyond the budget: any level's overflow cell holding exactly this key with this text.
    overflow = [c for c in sorted(columns) if col.OVERFLOW_COLUMN.fullmatch(c)]
    if overflow:
        pattern = sql_like_containing(col.overflow_fragment(key, value))
        found.extend(f"({ident(c)} IS NOT NULL AND {ident(c)} LIKE {pattern})" for c in overflow)
    return found



def _equals(column: str, value: str) -> str:
    """`column = 'value'`, guarded when the column is a field (see the module's rules)."""
    if column in col.TAG_COLUMNS:
        return f"{ident(column)} = {lit(value)}"
    return _field_equals(column, value)


def _field_equals(column: str, value: str) -> str:
    return _field_compare(column, "=", lit(value))


def _field_compare(column: str, op: str, literal: str) -> str:
    """`"f" IS NOT NULL AND "f" <op> <literal>`: a series written before `f` existed cannot match."""
    return f"({ident(column)} IS NOT NULL AND {ident(column)} {op} {literal})"


def _time_window(start: int | None, end: int | None, column: str = "time") -> list[str]:
    where = []
    if start is not None:
        where.append(f"{column} >= {sql_timestamp(start)}")
    if end is not None:
        where.append(f"{column} <= {sql_timestamp(end)}")
    return where


def _list(values: Sequence[str]) -> str:
    return ", ".join(lit(v) for v in values)
