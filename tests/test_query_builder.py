"""Golden tests of every SQL statement the server sends: a change to the SQL shows up as a text diff.

Regenerate the files under tests/golden_sql/ with `REGENERATE_GOLDEN_SQL=1 make test`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnosdb_jaeger_storage import query_builder as sql
from cnosdb_jaeger_storage import spanrow

GOLDEN = Path(__file__).parent / "golden_sql"
T = "jaeger_spans"
DAY = 86_400 * 10**9
START = 1_700_000_000 * 10**9

COLUMNS = frozenset({
    spanrow.TIME, spanrow.SERVICE_NAME, spanrow.TRACE_ID, spanrow.SPAN_ID, spanrow.NAME, spanrow.KIND,
    spanrow.STATUS_CODE, spanrow.DURATION, spanrow.SCOPE_NAME,
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
    "operations": sql.operations(T, "frontend"),
    "operations_with_kind": sql.operations(T, "frontend", "server"),
    "operations_hostile_service": sql.operations(T, "it's\nhostile\\"),
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
    "trace_bounds": sql.trace_bounds(T, ["0" * 31 + "1", "0" * 31 + "2"]),
    "spans_of_traces": sql.spans_of_traces(T, ["0" * 31 + "1"]),
    "spans_of_traces_window": sql.spans_of_traces(T, ["0" * 31 + "1"], START, START + DAY),
    "dependencies": sql.dependencies(T, START, START + DAY),
    "dependencies_unbounded": sql.dependencies(T, None, None),
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


def test_unknown_tag_key_cannot_match() -> None:
    assert sql.find_trace_ids(T, sql.TraceQuery(attributes={"nope": "1"}), COLUMNS) is None
