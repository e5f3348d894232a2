"""Scan accounting: whether CnosDB's tag index would narrow a read, and the series and rows it touches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnosdb_lite import Engine
from cnosdb_lite.scan import ScanReport, TableScan

# 5 traces x 2 spans; one series per span (trace-layout tags), 2 services.
LINES = "\n".join(f"spans,service=s{t % 2},trace_id=t{t},span_id=p{t}{s} dur={t * 10 + s}i {t * 100 + s}"
                  for t in range(5) for s in range(2))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    e = Engine(tmp_path_factory.mktemp("scan"), quirks=False, scan_accounting=True)
    e.write_lines("cnosdb", "public", LINES)
    e.write_lines("cnosdb", "public", "other,k=v f=1 1")
    yield e
    e.close()


def scans(e: Engine, sql: str) -> list[tuple]:
    _, report = e.execute_with_scan("cnosdb", "public", sql)
    assert report is not None and e.last_scan is report
    return [(s.table, s.index, s.series, s.rows) for s in report.scans]


@pytest.mark.parametrize(("where", "index", "series", "rows"), [
    ("trace_id = 't1'", True, 2, 2),
    ("'t1' = trace_id", True, 2, 2),
    ("trace_id IN ('t1')", True, 2, 2),
    ("trace_id IN ('t1', 't2', 't3')", True, 6, 6),
    ("(trace_id = 't1' OR trace_id = 't2')", True, 4, 4),
    ("trace_id IN ('t1', 't2', 't3', 't4')", False, 10, 10),          # 4+ values: domain "all"
    ("(trace_id = 't1' OR trace_id = 't2' OR trace_id = 't3' OR trace_id = 't4')", False, 10, 10),
    ("service = 's1' AND trace_id IN ('t1', 't2')", True, 2, 2),      # intersection
    ("service = 's1' AND trace_id IN ('t0', 't1', 't2', 't3')", True, 4, 4),
    ("trace_id = 't1' AND time > CAST('1970-01-01T00:00:00' AS TIMESTAMP)", True, 2, 2),
    ("time > CAST('1970-01-01T00:00:00' AS TIMESTAMP)", False, 10, 10),  # time never narrows series
    ("dur = 11", False, 10, 10),                                       # fields neither
    ("trace_id <> 't1'", False, 10, 10),
    ("trace_id LIKE 't1%'", False, 10, 10),
    ("(trace_id = 't1' OR service = 's0')", False, 10, 10),
    ("TRUE", False, 10, 10),
])
def test_tag_index_rule(engine: Engine, where: str, index: bool, series: int, rows: int) -> None:
    assert scans(engine, f"SELECT * FROM spans WHERE {where}") == [("spans", index, series, rows)]


def test_union_all_reports_each_branch(engine: Engine) -> None:
    sql = ("SELECT * FROM spans WHERE trace_id IN ('t0', 't1', 't2') UNION ALL "
           "SELECT * FROM spans WHERE trace_id IN ('t3', 't4')")
    assert scans(engine, sql) == [("spans", True, 6, 6), ("spans", True, 4, 4)]


def test_full_scan_without_where_and_per_table(engine: Engine) -> None:
    assert scans(engine, "SELECT count(*) FROM spans") == [("spans", False, 10, 10)]
    assert scans(engine, "SELECT * FROM other") == [("other", False, 1, 1)]
    report = engine.execute_with_scan("cnosdb", "public", "SELECT * FROM spans")[1]
    assert report.full_scans == report.scans and report.scans[0].full_scan


def test_joins_report_each_side(engine: Engine) -> None:
    sql = ("SELECT c.span_id FROM spans AS c JOIN spans AS p ON c.trace_id = p.trace_id "
           "WHERE c.trace_id = 't1' AND p.service = 's0'")
    assert scans(engine, sql) == [("spans", True, 2, 2), ("spans", True, 6, 6)]


def test_show_tag_values_reads_the_index_only(engine: Engine) -> None:
    _, report = engine.execute_with_scan("cnosdb", "public", "SHOW TAG VALUES FROM spans WITH KEY = service")
    assert report.scans == (TableScan("spans", True, 10, 0, index_only=True),)
    _, report = engine.execute_with_scan("cnosdb", "public",
                                         "SHOW TAG VALUES FROM spans WITH KEY = trace_id WHERE service = 's1'")
    assert report.scans == (TableScan("spans", True, 4, 0, index_only=True),)


def test_statements_without_tables_report_nothing(engine: Engine) -> None:
    assert engine.execute_with_scan("cnosdb", "public", "SELECT 1")[1] is None
    assert engine.execute_with_scan("cnosdb", "public", "SHOW TABLES")[1] is None


def test_counts_follow_writes(tmp_path: Path) -> None:
    e = Engine(tmp_path, quirks=False, scan_accounting=True)
    e.write_lines("cnosdb", "public", "m,k=a f=1 1\nm,k=a f=2 2")
    assert scans(e, "SELECT * FROM m") == [("m", False, 1, 2)]
    e.write_lines("cnosdb", "public", "m,k=b f=1 1")
    assert scans(e, "SELECT * FROM m") == [("m", False, 2, 3)]
    e.close()


def test_header_value_is_json() -> None:
    report = ScanReport("q", (TableScan("t", True, 2, 5),))
    assert json.loads(report.header_value()) == [
        {"table": "t", "index": True, "series": 2, "rows": 5, "index_only": False}]


def test_accounting_follows_quirks_mode_by_default(tmp_path: Path) -> None:
    for quirks in (False, True):
        e = Engine(tmp_path / str(quirks), quirks=quirks)
        e.write_lines("cnosdb", "public", "m,k=a f=1 1")
        assert (e.execute_with_scan("cnosdb", "public", "SELECT * FROM m")[1] is not None) is quirks
        assert len(e.scans) == int(quirks)
        e.close()
