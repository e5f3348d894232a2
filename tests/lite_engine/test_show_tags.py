"""SHOW TAG VALUES and SHOW SERIES as CnosDB answers them (its `dql/show_tag_values.slt`, `show_series.slt`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnosdb_lite import CnosDBError, Engine

LINES = "\n".join([
    "test,t0=a,t1=b,t2=c f0=1,f1=\"2\" 0",
    "test,t0=a f0=1 1",
    "test,t1=b f1=\"2\" 2",
    "test,t2=c f0=1 3",
    "test,t0=a,t1=b f0=1 4",
    "test,t1=b,t2=c f0=1 5",
])


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    e = Engine(tmp_path_factory.mktemp("show"), quirks=False)
    e.execute("cnosdb", "public", "CREATE DATABASE show_tag_values")
    e.write_lines("cnosdb", "show_tag_values", LINES)
    e.execute("cnosdb", "show_tag_values", "INSERT INTO test(TIME, t0, f0) VALUES (6, '', 1)")
    yield e
    e.close()


def rows(e: Engine, sql: str, db: str = "show_tag_values") -> list[tuple]:
    return [tuple(r.values()) for r in e.execute("cnosdb", db, sql).to_pylist()]


ALL = [("t0", ""), ("t0", "a"), ("t1", "b"), ("t2", "c")]


@pytest.mark.parametrize(("sql", "expected"), [
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2)", ALL),
    ("SHOW TAG VALUES ON show_tag_values FROM test WITH KEY IN (t0, t1, t2)", ALL),
    ('SHOW TAG VALUES FROM test WITH KEY = "t0"', [("t0", ""), ("t0", "a")]),
    ("SHOW TAG VALUES FROM test WITH KEY != t0 ORDER BY key, value", [("t1", "b"), ("t2", "c")]),
    ("SHOW TAG VALUES FROM test WITH KEY <> t0", [("t1", "b"), ("t2", "c")]),
    ("SHOW TAG VALUES FROM test WITH KEY NOT IN (t0, t1, t2)", []),
    ("SHOW TAG VALUES FROM test WITH KEY NOT IN (t0)", [("t1", "b"), ("t2", "c")]),
    ("SHOW TAG VALUES FROM test WITH KEY = nope", []),
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2) ORDER BY key ASC, value DESC",
     [("t0", "a"), ("t0", ""), ("t1", "b"), ("t2", "c")]),
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2) ORDER BY key DESC, value ASC",
     [("t2", "c"), ("t1", "b"), ("t0", ""), ("t0", "a")]),
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2) WHERE time < now() ORDER BY key, value", ALL),
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2) WHERE t0 != '' ORDER BY key, value",
     [("t0", "a"), ("t1", "b"), ("t2", "c")]),
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2) WHERE t1 = 'b' ORDER BY key, value",
     [("t0", "a"), ("t1", "b"), ("t2", "c")]),
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2) WHERE t0 = 'a' AND t2 IS NULL",
     [("t0", "a"), ("t1", "b")]),
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2) LIMIT 2 OFFSET 1", [("t0", "a"), ("t1", "b")]),
    ("show tag values from test with key = t2;", [("t2", "c")]),
    ("SHOW SERIES FROM test WHERE t1 = 'b'",
     [("test,t0=a,t1=b",), ("test,t0=a,t1=b,t2=c",), ("test,t1=b",), ("test,t1=b,t2=c",)]),
    ("SHOW SERIES ON show_tag_values FROM test WHERE t0 = '' ORDER BY key DESC", [("test,t0=",)]),
])
def test_answers(engine: Engine, sql: str, expected: list[tuple]) -> None:
    assert rows(engine, sql, db="public" if " ON " in sql else "show_tag_values") == expected


def test_columns_are_key_and_value(engine: Engine) -> None:
    result = engine.execute("cnosdb", "show_tag_values", "SHOW TAG VALUES FROM test WITH KEY = zzz")
    assert result.column_names == ["key", "value"] and result.num_rows == 0


@pytest.mark.parametrize(("sql", "code", "message"), [
    ("SHOW TAG VALUES FROM test WITH KEY IN (t0, t1, t2) WHERE f1 IS NOT NULL ORDER BY key, value", "010046",
     "Semantic error: SHOW SERIES does not support where clause contains field f1"),
    ("SHOW SERIES FROM test WHERE f0 = 1", "010046",
     "Semantic error: SHOW SERIES does not support where clause contains field f0"),
    ("SHOW TAG VALUES FROM nope WITH KEY = t0", "030019", 'Table not found: "cnosdb.show_tag_values.nope"'),
    ("SHOW TAG VALUES", "010009", "sql parser error: Expected FROM, found: EOF"),
    ("SHOW TAG VALUES FROM test", "010009", "sql parser error: Expected WITH, found: EOF"),
    ("SHOW TAG VALUES ON public FROM show_series.test", "010009", "sql parser error: Expected WITH, found: ."),
    ("SHOW TAG VALUES FROM test WITH KEY 't0'", "010009",
     "sql parser error: Expected =, !=, <>, IN, NOT IN, found: 't0'"),
])
def test_errors(engine: Engine, sql: str, code: str, message: str) -> None:
    with pytest.raises(CnosDBError) as info:
        engine.execute("cnosdb", "show_tag_values", sql)
    assert (info.value.status, info.value.code, info.value.message) == (422, code, message)


def test_unknown_column_is_a_schema_error(engine: Engine) -> None:
    with pytest.raises(CnosDBError) as info:
        engine.execute("cnosdb", "show_tag_values", "SHOW TAG VALUES FROM test WITH KEY = t0 WHERE nope = 'x'")
    assert info.value.code == "010001"
    assert info.value.message.startswith("Datafusion: Schema error: No field named nope. Valid fields are ")


def test_same_answers_in_quirks_mode(tmp_path: Path) -> None:
    e = Engine(tmp_path, quirks=True)
    e.write_lines("cnosdb", "public", "m,a=x f=1 1")
    e.write_lines("cnosdb", "public", 'm,a=y g="z" 2')
    assert rows(e, "SHOW TAG VALUES FROM m WITH KEY = a WHERE a = 'x'", "public") == [("a", "x")]
    e.close()
