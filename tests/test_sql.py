"""Golden tests of every SQL statement the server sends: a change to the SQL shows up as a text diff.

Regenerate the files under tests/golden_sql/ with `REGENERATE_GOLDEN_SQL=1 make test`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cnosdb_jaeger_storage.cnosdb import operations_table
from cnosdb_jaeger_storage.cnosdb import sql as sql
from cnosdb_jaeger_storage.model import span_rows

GOLDEN = Path(__file__).parent / "golden_sql"
T = "jaeger_spans"
DAY = 86_400 * 10**9
START = 1_700_000_000 * 10**9

COLUMNS = frozenset({
    span_rows.TIME, span_rows.SERVICE_NAME, span_rows.TRACE_ID, span_rows.SPAN_ID, span_rows.NAME, span_rows.KIND,
    span_rows.STATUS_CODE, span_rows.DURATION, span_rows.SCOPE_NAME,
    "ResourceSpans/ScopeSpans/Span/attributes/http.status_code",
    "ResourceSpans/Resource/attributes/host.name",
    "ResourceSpans/ScopeSpans/Span/Event_0/attributes/http.status_code",
    "ResourceSpans/ScopeSpans/Span/Event_1/attributes/http.status_code",
    "ResourceSpans/ScopeSpans/Span/Event_0/name",
    "ResourceSpans/ScopeSpans/Span/Link_0/attributes/http.status_code",
    "ResourceSpans/ScopeSpans/InstrumentationScope/attributes/http.status_code",
    "ResourceSpans/ScopeSpans/Span/attributes/it's \"quoted\"",
    "ResourceSpans/ScopeSpans/Span/attributes/x/attributes/http.status_code",
    "ResourceSpans/ScopeSpans/Span/attributes/back\\\\slash",
})

CASES = {
    "create_database": sql.create_database("jaeger", "7d"),
    "describe_database": sql.describe_database("jaeger"),
    "show_tables": sql.show_tables(),
    "describe_table": sql.describe_table(T),
    "drop_table": sql.drop_table(T),
    "services": sql.services(T),
    "indexed_services": sql.indexed_services(T + "_operations"),
    "indexed_operations": sql.indexed_operations(T + "_operations", "frontend"),
    "indexed_operations_hostile_service": sql.indexed_operations(T + "_operations", "it's\nhostile\\"),
    "operation_kinds": sql.operation_kinds(T, "frontend"),
    "operation_names": sql.operation_names(T, "frontend"),
    "operation_names_of_kind": sql.operation_names(T, "frontend", "SPAN_KIND_SERVER"),
    "operation_names_hostile_service": sql.operation_names(T, "it's\nhostile\\"),
    "operations_scan": sql.operations_scan(T, "frontend"),
    "operations_scan_with_kind": sql.operations_scan(T, "frontend", "server"),
    "find_trace_ids_default": sql.find_trace_ids(T, sql.TraceQuery(), COLUMNS),
    "find_trace_ids_all_filters": sql.find_trace_ids(T, sql.TraceQuery(
        service="frontend", operation="GET /", attributes={"http.status_code": "200"},
        start_min=START, start_max=START + DAY, duration_min=4500, duration_max=5500, limit=20), COLUMNS),
    "find_trace_ids_mapped_tags": sql.find_trace_ids(T, sql.TraceQuery(
        service="frontend", attributes={"error": "true", "span.kind": "server", "otel.scope.name": "lib",
                                        "event": "retry", "host.name": "h1"}), COLUMNS),
    "find_trace_ids_hostile_tag": sql.find_trace_ids(T, sql.TraceQuery(
        attributes={"it's \"quoted\"": "'; DROP TABLE jaeger_spans; --", "back\\slash": "v"}), COLUMNS),
    "find_trace_ids_unknown_tag": sql.find_trace_ids(T, sql.TraceQuery(attributes={"nope": "1"}), COLUMNS),
    "find_trace_ids_kind_tag": sql.find_trace_ids(T, sql.TraceQuery(attributes={"span.kind": "client"}),
                                                  COLUMNS | {span_rows.KIND_TAG}),
    "find_trace_ids_overflow": sql.find_trace_ids(T, sql.TraceQuery(
        service="frontend", attributes={"http.status_code": "200", "100%_off 'q' \"d\" b\\s": "50%_\\"}),
        COLUMNS | {span_rows.SPAN_ATTRIBUTES_OVERFLOW, span_rows.RESOURCE_ATTRIBUTES_OVERFLOW,
                   "ResourceSpans/ScopeSpans/Span/Event_0/attributes_overflow"}),
    "trace_bounds": sql.trace_bounds(T, ["0" * 31 + "1", "0" * 31 + "2"]),
    "trace_bounds_seven": sql.trace_bounds(T, [f"{i:032x}" for i in range(1, 8)]),
    "trace_summary_counts": sql.trace_summary_counts(T, [f"{i:032x}" for i in range(1, 5)]),
    "trace_summary_counts_without_status": sql.trace_summary_counts(T, ["0" * 31 + "1"], by_status=False),
    "trace_roots": sql.trace_roots(T, [f"{i:032x}" for i in range(1, 5)]),
    "trace_roots_without_parents": sql.trace_roots(T, ["0" * 31 + "1"], has_parents=False),
    "trace_parented_spans": sql.trace_parented_spans(T, [f"{i:032x}" for i in range(1, 5)]),
    "spans_of_traces": sql.spans_of_traces(T, ["0" * 31 + "1"]),
    "spans_of_traces_seven": sql.spans_of_traces(T, [f"{i:032x}" for i in range(1, 8)]),
    "spans_of_traces_window": sql.spans_of_traces(T, ["0" * 31 + "1"], START, START + DAY),
    "span_services": sql.span_services(T, START, START + 3600 * 10**9 - 1),
    "span_services_unbounded": sql.span_services(T, None, None),
    "span_services_of_traces": sql.span_services_of_traces(T, [f"{i:032x}" for i in range(1, 5)]),
}


@pytest.mark.parametrize("name", sorted(CASES), ids=sorted(CASES))
def test_sql_matches_golden_file(name: str) -> None:
    statement = CASES[name]
    text = "-- no statement: the query cannot match\n" if statement is None else statement + "\n"
    path = GOLDEN / f"{name}.sql"
    if os.environ.get("REGENERATE_GOLDEN_SQL"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text


def test_tag_search_matches_every_level_of_exactly_that_key() -> None:
    statement = sql.find_trace_ids(T, sql.TraceQuery(attributes={"http.status_code": "200"}), COLUMNS)
    assert statement is not None
    for level in ("Span/attributes", "Event_0/attributes", "Event_1/attributes", "Link_0/attributes",
                  "InstrumentationScope/attributes"):
        assert f'{level}/http.status_code" = \'200\'' in statement
    assert "x/attributes/http.status_code" not in statement


def test_any_tag_key_may_match_an_overflow_column_exactly() -> None:
    columns = COLUMNS | {span_rows.SPAN_ATTRIBUTES_OVERFLOW}
    statement = sql.find_trace_ids(T, sql.TraceQuery(attributes={"nope": "1"}), columns)
    assert statement is not None
    overflow = '"ResourceSpans/ScopeSpans/Span/attributes_overflow"'
    assert f"({overflow} IS NOT NULL AND {overflow} LIKE '%\"nope\":[\"1\"%')" in statement
    statement = sql.find_trace_ids(T, sql.TraceQuery(attributes={"a_b%c": "x\\y"}), columns)
    assert statement is not None
    assert "LIKE '%\"a\\_b\\%25c\":[\"x\\%5Cy\"%'" in statement


def test_unknown_tag_key_cannot_match() -> None:
    assert sql.find_trace_ids(T, sql.TraceQuery(attributes={"nope": "1"}), COLUMNS) is None


# --- rules every statement keeps on CnosDB (see cnosdb/sql.py's docstring), checked on the golden files ---

_TOKEN = re.compile(r"""\s*("(?:[^"]|"")*"|'(?:[^']|'')*'|<=|>=|<>|[=<>(),]|[^\s"'(),=<>]+)""")
_COMPARISON = ("=", "<>", "<", "<=", ">", ">=")
_UNQUOTED_TAGS = {"time", "trace_id"}  # `time`, and the output alias ordered by in find_trace_ids


def _tokens(statement: str) -> list[str]:
    return _TOKEN.findall(statement)


def _is_literal(token: str) -> bool:
    return token.startswith("'") or token.lstrip("-").isdigit()


def _golden_statements() -> dict[str, str]:
    found = {path.stem: path.read_text().strip() for path in sorted(GOLDEN.glob("*.sql"))}
    return {name: text for name, text in found.items() if not text.startswith("--")}


def _tag_identifiers() -> set[str]:
    """Tags of the span table and of the operations table (every column of it but `last_start`)."""
    tags = (*span_rows.TAG_COLUMNS, operations_table.SERVICE, operations_table.NAME, operations_table.KIND)
    return {'"' + column.replace('"', '""') + '"' for column in tags} | _UNQUOTED_TAGS


def _unguarded_field_comparisons(statement: str) -> list[str]:
    """`<field column> <op> <literal>` comparisons not inside `(<column> IS NOT NULL AND ...)`."""
    tokens = _tokens(statement)
    tags = _tag_identifiers()
    found = []
    for i in range(1, len(tokens) - 1):
        column, op, value = tokens[i - 1], tokens[i], tokens[i + 1]
        if op not in _COMPARISON or not _is_literal(value) or column in tags or "." in column:
            continue
        if tokens[i - 7:i - 1] != ["(", column, "IS", "NOT", "NULL", "AND"]:
            found.append(f"{column} {op} {value}")
    return found


@pytest.mark.parametrize("name", sorted(_golden_statements()))
def test_every_field_comparison_is_guarded_against_series_without_the_column(name: str) -> None:
    assert _unguarded_field_comparisons(_golden_statements()[name]) == []


@pytest.mark.parametrize("name", sorted(_golden_statements()))
def test_every_like_is_guarded_and_escapes_nothing_but_percent_and_underscore(name: str) -> None:
    tokens = _tokens(_golden_statements()[name])
    for i, token in enumerate(tokens):
        if token.upper() == "LIKE":
            column, pattern = tokens[i - 1], tokens[i + 1]
            assert tokens[i - 7:i - 1] == ["(", column, "IS", "NOT", "NULL", "AND"], f"{name}: {column} LIKE unguarded"
            # A backslash only before % or _: what DataFusion 27 and 55 read alike (quoting.sql_like_containing).
            assert re.sub(r"\\[%_]", "", pattern).count("\\") == 0, pattern


@pytest.mark.parametrize("name", sorted(_golden_statements()))
def test_in_lists_stay_on_cnosdbs_tag_index(name: str) -> None:
    tokens = _tokens(_golden_statements()[name])
    for i, token in enumerate(tokens):
        if token.upper() == "IN" and tokens[i + 1] == "(":
            end = tokens.index(")", i)
            values = [t for t in tokens[i + 2:end] if t != ","]
            assert len(values) <= sql.TRACE_IDS_PER_IN, f"{name}: an IN list of {len(values)} values"


@pytest.mark.parametrize("name", sorted(n for n in _golden_statements() if n.startswith(("services", "operation_"))))
def test_services_and_operations_read_the_series_index(name: str) -> None:
    assert _golden_statements()[name].startswith("SHOW TAG VALUES ")


@pytest.mark.parametrize("name", ["find_trace_ids_all_filters", "spans_of_traces_window"])
def test_statements_given_a_window_bound_every_scan_by_it(name: str) -> None:
    for branch in _golden_statements()[name].split(" UNION ALL "):
        assert "time >= CAST(" in branch and "time <= CAST(" in branch, name


def test_the_rules_catch_what_they_forbid() -> None:
    """The checks above must fail on the statements they exist to stop."""
    field = '"ResourceSpans/ScopeSpans/Span/attributes/k"'
    assert _unguarded_field_comparisons(f"SELECT * FROM t WHERE {field} = 'v'") == [f"{field} = 'v'"]
    assert _unguarded_field_comparisons(f"SELECT * FROM t WHERE ({field} IS NOT NULL AND {field} = 'v')") == []
    assert sql.spans_of_traces(T, [f"{i:032x}" for i in range(10)]).count(" IN (") == 4
