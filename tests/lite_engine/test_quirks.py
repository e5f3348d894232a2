"""Quirks mode: CnosDB's exact-pushed field comparisons match rows written before the field existed (CnosDB v2.4.3).

Every test names its mode: `quirks=True` reproduces CnosDB, `quirks=False` is lite's correct filtering.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnosdb_lite import Engine
from cnosdb_lite.quirks import ENV

WRITES = ['t2,tg=a g=1 1000', 't2,tg=b g=2 2000', 't2,tg=c f="PUT",g=3 3000', 't2,tg=d f="GET",g=4 4000']


def make(path: Path, quirks: bool | None, writes: list[str] = WRITES) -> Engine:
    e = Engine(path, quirks=quirks)
    e.execute("cnosdb", "public", "CREATE DATABASE IF NOT EXISTS fidtest")
    for line in writes:               # one request each, as in the measurement
        e.write_lines("cnosdb", "fidtest", line)
    return e


def tags(e: Engine, where: str) -> list[str]:
    rows = e.execute("cnosdb", "fidtest", f"SELECT tg FROM t2 WHERE {where} ORDER BY tg").to_pylist()
    return [r["tg"] for r in rows]


@pytest.fixture
def quirky(tmp_path: Path):
    e = make(tmp_path, quirks=True)
    yield e
    e.close()


@pytest.fixture
def correct(tmp_path: Path):
    e = make(tmp_path, quirks=False)
    yield e
    e.close()


@pytest.mark.parametrize(("where", "cnosdb"), [
    ("f = 'POST'", ["a", "b"]),
    ("f = 'GET'", ["a", "b", "d"]),
    ("'GET' = f", ["a", "b", "d"]),
    ("f IN ('POST')", ["a", "b"]),
    ("f > 'A'", ["a", "b", "c", "d"]),
    ("f <= 'PUT'", ["a", "b", "c", "d"]),
    ("(f = 'GET')", ["a", "b", "d"]),
    ("g > 0 AND (f = 'GET' AND tg <> 'b')", ["a", "d"]),
    ("t2.f = 'POST'", ["a", "b"]),
])
def test_field_comparisons_match_older_rows(quirky: Engine, where: str, cnosdb: list[str]) -> None:
    assert tags(quirky, where) == cnosdb


@pytest.mark.parametrize(("where", "right"), [
    ("f <> 'GET'", ["c"]),
    ("NOT (f = 'GET')", ["c"]),
    ("(f = 'POST' OR f = 'X')", []),
    ("f IN ('POST', 'X')", []),            # planned as an OR chain: not exact
    ("f NOT IN ('GET')", ["c"]),
    ("f LIKE 'G%'", ["d"]),
    ("coalesce(f, '') = 'POST'", []),
    ("f IS NOT NULL AND f = 'POST'", []),
    ("tg = 'a'", ["a"]),
    ("g = 3", ["c"]),                       # g existed from the first write
    ("time >= CAST('1970-01-01T00:00:00.000003' AS TIMESTAMP)", ["c", "d"]),
])
def test_other_shapes_are_filtered_correctly(quirky: Engine, where: str, right: list[str]) -> None:
    assert tags(quirky, where) == right


@pytest.mark.parametrize("where", ["f = 'POST'", "f = 'GET'", "f IN ('POST')", "f > 'A'"])
def test_without_quirks_lite_filters_correctly(correct: Engine, where: str) -> None:
    expected = {"f = 'POST'": [], "f = 'GET'": ["d"], "f IN ('POST')": [], "f > 'A'": ["c", "d"]}[where]
    assert tags(correct, where) == expected


def test_rows_of_the_creating_write_are_not_affected(tmp_path: Path) -> None:
    e = make(tmp_path, quirks=True, writes=["\n".join(WRITES)])
    assert tags(e, "f = 'POST'") == []
    e.close()


def test_later_rows_without_the_value_are_not_affected(tmp_path: Path) -> None:
    e = make(tmp_path, quirks=True, writes=[*WRITES, "t2,tg=e g=5 5000"])
    assert tags(e, "f = 'POST'") == ["a", "b"]
    e.close()


def test_restart_hides_it_until_a_new_column_appears(tmp_path: Path) -> None:
    make(tmp_path, quirks=True).close()
    e = Engine(tmp_path, quirks=True)
    assert tags(e, "f = 'POST'") == []
    e.write_lines("cnosdb", "fidtest", 't2,tg=e h="x" 5000')
    assert tags(e, "h = 'y'") == ["a", "b", "c", "d"]
    assert tags(e, "f = 'POST'") == []          # f existed when row e was written
    e.close()


def test_union_branches_joins_and_subqueries(quirky: Engine) -> None:
    q = ("SELECT tg FROM t2 WHERE tg = 'c' UNION ALL SELECT tg FROM t2 WHERE f = 'X' "
         "UNION ALL SELECT x.tg FROM t2 AS x WHERE x.f = 'Y'")
    assert sorted(r["tg"] for r in quirky.execute("cnosdb", "fidtest", q).to_pylist()) == ["a", "a", "b", "b", "c"]
    q = "SELECT tg FROM (SELECT tg FROM t2 WHERE f = 'Z') AS s ORDER BY tg"
    assert [r["tg"] for r in quirky.execute("cnosdb", "fidtest", q).to_pylist()] == ["a", "b"]
    q = "SELECT a.tg AS t FROM t2 AS a JOIN t2 AS b ON a.g = b.g WHERE a.f = 'Q' ORDER BY t"
    assert [r["t"] for r in quirky.execute("cnosdb", "fidtest", q).to_pylist()] == ["a", "b"]


def test_hidden_column_never_shows(quirky: Engine) -> None:
    assert quirky.execute("cnosdb", "fidtest", "SELECT * FROM t2 LIMIT 1").column_names == ["time", "tg", "g", "f"]
    described = quirky.execute("cnosdb", "fidtest", "DESCRIBE t2").column("column_name").to_pylist()
    assert described == ["time", "tg", "g", "f"]
    assert [r["column_name"] for r in quirky.execute("cnosdb", "fidtest", "DESCRIBE TABLE t2").to_pylist()] == \
        ["time", "tg", "g", "f"]


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("0", False), ("", False), (None, False)])
def test_environment_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, on: bool) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    e = make(tmp_path, quirks=None)
    assert e.quirks is on
    assert tags(e, "f = 'POST'") == (["a", "b"] if on else [])
    e.close()


def test_flushes_and_merges_store_no_write_numbers_older_than_every_new_column(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    from cnosdb_lite import compaction
    from cnosdb_lite.table import WRITE_COL

    monkeypatch.setattr(compaction, "FANIN", 2)
    e = make(tmp_path, quirks=True)          # f added by the third write: rows a and b are older
    e.checkpoint()
    e.write_lines("cnosdb", "fidtest", 't2,tg=e g=5 5000')
    e.checkpoint()
    e.wait_for_compaction()
    [segment] = e.tenants["cnosdb"]["fidtest"].tables["t2"].segments
    stored = pq.read_table(segment.path, columns=["tg", WRITE_COL]).sort_by("tg").column(WRITE_COL).to_pylist()
    assert stored == [None, None, 3, 4, 5]
    assert tags(e, "f = 'POST'") == ["a", "b"]
    assert tags(e, "f = 'GET'") == ["a", "b", "d"]
    e.close()
