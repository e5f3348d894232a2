"""The Engine API: namespaces, DDL, writes, upsert, type conflicts, TTL, DELETE/INSERT, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnosdb_lite import CnosDBError, Engine
from cnosdb_lite import table as table_mod

from .fake_clock import NOW, Clock

DAY = 86400 * 10**9


def q(e: Engine, sql: str, db: str = "public") -> list[dict]:
    return e.execute("cnosdb", db, sql).to_pylist()


def error(fn, *args) -> CnosDBError:
    with pytest.raises(CnosDBError) as info:
        fn(*args)
    return info.value


def test_default_namespace_and_show(engine: Engine) -> None:
    assert q(engine, "SHOW DATABASES") == [{"database_name": "public"}]
    assert q(engine, "SHOW TABLES") == []
    engine.write_lines("cnosdb", "public", "b f=1 1\na f=1 1")
    assert q(engine, "show tables;") == [{"table_name": "a"}, {"table_name": "b"}]


@pytest.mark.parametrize(("call", "status", "code", "message"), [
    (lambda e: e.write_lines("cnosdb", "nodb", "m f=1"), 422, "030017", 'Database not found: "nodb"'),
    (lambda e: e.write_lines("nobody", "public", "m f=1"), 422, "030010", "The tenant nobody not found"),
    (lambda e: e.execute("cnosdb", "nodb", "SELECT * FROM t"), 422, "030019", 'Table not found: "cnosdb.nodb.t"'),
    (lambda e: e.execute("cnosdb", "public", "SELECT 1; SELECT 2"), 422, "010013",
     "Multi-statement not allow, found num:2, sql:SELECT 1; SELECT 2"),
    (lambda e: e.execute("cnosdb", "public", "CREATE DATABASE public"), 422, "030018",
     'Database "public" already exists'),
    (lambda e: e.execute("cnosdb", "public", "DROP DATABASE nope"), 422, "030017", 'Database not found: "nope"'),
    (lambda e: e.execute("cnosdb", "public", "DROP TABLE nope"), 422, "030019", 'Table not found: "nope"'),
    (lambda e: e.execute("cnosdb", "public", "DESCRIBE TABLE nope"), 422, "030019",
     'Table not found: "cnosdb.public.nope"'),
    (lambda e: e.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '1d' FOO 3"), 422, "010009",
     "sql parser error: Expected end of statement, found: FOO"),
    (lambda e: e.execute("cnosdb", "public", "CREATE DATABASE d WITH SHARD 0"), 422, "010009",
     "sql parser error: shard number should be greater than 0"),
    (lambda e: e.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL 'soon'"), 422, "010009",
     "sql parser error: 'soon' is not a valid duration or 'INF'"),
    (lambda e: e.execute("cnosdb", "public", "CREATE TABLE t (TAGS(a))"), 422, "010032",
     "Semantic error: There must be at least one field column."),
], ids=["write-missing-db", "write-missing-tenant", "query-missing-db", "multi-statement",
        "db-exists", "drop-missing-db", "drop-missing-table", "describe-missing-table", "unknown-db-option",
        "zero-shard", "bad-ttl", "table-without-fields"])
def test_errors(engine: Engine, call, status: int, code: str, message: str) -> None:
    err = error(call, engine)
    assert (err.status, err.code, err.message) == (status, code, message)


def test_query_error_is_datafusion(engine: Engine) -> None:
    engine.write_lines("cnosdb", "public", "m f=1 1")
    err = error(engine.execute, "cnosdb", "public", "SELECT nope FROM m")
    assert (err.status, err.code) == (422, "010001")
    assert err.message.startswith("Datafusion: ")
    err = error(engine.execute, "cnosdb", "public", "CREATE VIEW v AS SELECT 1")
    assert err.code == "010001"


def test_database_lifecycle_and_describe(engine: Engine) -> None:
    assert engine.execute("cnosdb", "public", "CREATE DATABASE IF NOT EXISTS d1 WITH TTL '7d' SHARD 2 "
                          "VNODE_DURATION '1d' REPLICA 1 PRECISION 'ms'") is None
    assert engine.execute("cnosdb", "public", "CREATE DATABASE IF NOT EXISTS d1") is None
    (row,) = q(engine, "DESCRIBE DATABASE d1")
    assert row == {"ttl": "7days", "shard": 2, "vnode_duration": "1day", "replica": 1, "precision": "MS",
                   "max_memcache_size": "128 MiB", "memcache_partitions": 16, "wal_max_file_size": "128 MiB",
                   "wal_sync": False, "strict_write": False, "max_cache_readers": 32}
    engine.execute("cnosdb", "public", "ALTER DATABASE d1 SET TTL '30'")
    assert q(engine, "DESCRIBE DATABASE d1")[0]["ttl"] == "30days"
    engine.execute("cnosdb", "public", "DROP DATABASE d1")
    engine.execute("cnosdb", "public", "DROP DATABASE IF EXISTS d1")
    assert q(engine, "SHOW DATABASES") == [{"database_name": "public"}]


def test_describe_table_types(engine: Engine) -> None:
    engine.write_lines("cnosdb", "public", 'm,tag=x d=1,i=2i,u=3u,b=true,s="x" 1')
    assert q(engine, "DESCRIBE TABLE m") == [
        {"column_name": n, "data_type": t, "column_type": k, "compression_codec": "DEFAULT"}
        for n, t, k in [("time", "TIMESTAMP(NANOSECOND)", "TIME"), ("tag", "STRING", "TAG"),
                        ("b", "BOOLEAN", "FIELD"), ("d", "DOUBLE", "FIELD"), ("i", "BIGINT", "FIELD"),
                        ("s", "STRING", "FIELD"), ("u", "BIGINT UNSIGNED", "FIELD")]]


def test_create_table_and_insert(engine: Engine) -> None:
    engine.execute("cnosdb", "public", "CREATE TABLE IF NOT EXISTS t (f DOUBLE, n BIGINT UNSIGNED CODEC(DELTA), "
                   "s STRING, TAGS(a, b));")
    assert [r["column_name"] for r in q(engine, "DESCRIBE TABLE t")] == ["time", "f", "n", "s", "a", "b"]
    err = error(engine.execute, "cnosdb", "public", "CREATE TABLE t (f DOUBLE)")
    assert (err.code, err.message) == ("030020", "Table t already exists.")
    out = q(engine, "INSERT INTO t (time, a, f) VALUES (1666165200290401000, 'x', 1.5), "
                    "('2022-10-19 05:40:00', 'y', 2)")
    assert out == [{"rows": 2}]
    assert q(engine, "SELECT a, f FROM t ORDER BY a") == [{"a": "x", "f": 1.5}, {"a": "y", "f": 2.0}]
    engine.execute("cnosdb", "public", "DROP TABLE t")
    assert q(engine, "SHOW TABLES") == []


def test_quoted_identifiers(engine: Engine) -> None:
    engine.write_lines("cnosdb", "public",
                       'spans,ResourceSpans/ScopeSpans/Span/name=GET\\ /x '
                       'ResourceSpans/ScopeSpans/Span/attributes/http.method="GET" 5')
    rows = q(engine, 'SELECT "ResourceSpans/ScopeSpans/Span/attributes/http.method" AS m FROM spans '
                     "WHERE \"ResourceSpans/ScopeSpans/Span/name\" = 'GET /x'")
    assert rows == [{"m": "GET"}]
    err = error(engine.execute, "cnosdb", "public", "SELECT ResourceSpans FROM spans")
    assert err.code == "010001"


def test_upsert_merges_fields_last_write_wins(engine: Engine) -> None:
    engine.write_lines("cnosdb", "public", "tab,ta=a1 fa=1,fc=5 1690510331000000000")
    engine.write_lines("cnosdb", "public", "tab,ta=a1 fb=2,fc=6 1690510331000000000")
    engine.write_lines("cnosdb", "public", "tab,ta=a2 fa=9 1690510331000000000")
    assert q(engine, "SELECT ta, fa, fb, fc FROM tab ORDER BY ta") == [
        {"ta": "a1", "fa": 1.0, "fb": 2.0, "fc": 6.0}, {"ta": "a2", "fa": 9.0, "fb": None, "fc": None}]


def test_upsert_within_one_request(engine: Engine) -> None:
    engine.write_lines("cnosdb", "public", "m,t=a x=1 10\nm,t=a y=2 10\nm,t=a x=3 10")
    assert q(engine, "SELECT x, y FROM m") == [{"x": 3.0, "y": 2.0}]


def test_upsert_against_sealed_chunks_and_restart(tmp_path: Path, clock: Clock, monkeypatch) -> None:
    monkeypatch.setattr(table_mod, "CHUNK_ROWS", 100)
    e = Engine(tmp_path, now_ns=clock)
    e.write_lines("cnosdb", "public", "\n".join(f"m,s=s{i % 7} a={i} {1000 + i}" for i in range(450)))
    assert len(e.session("cnosdb", "public").sql("select 1").to_arrow_table()) == 1
    e.write_lines("cnosdb", "public", "m,s=s3 b=7i 1003")
    e.close()
    e = Engine(tmp_path, now_ns=clock)
    e.write_lines("cnosdb", "public", "m,s=s0 b=8i 1007")
    assert q(e, "SELECT count(*) AS n FROM m") == [{"n": 450}]
    assert q(e, "SELECT a, b FROM m WHERE CAST(time AS BIGINT) IN (1003, 1007) ORDER BY time") == [
        {"a": 3.0, "b": 7}, {"a": 7.0, "b": 8}]
    files = list((tmp_path / "cnosdb" / "public" / "m").glob("*.parquet"))
    assert files
    e.close()


def test_upsert_against_segments_of_a_trace_table(tmp_path: Path, clock: Clock) -> None:
    """A table with a trace-ID tag narrows the segments' rows to compare by their trace filter too: rows of its
    traces still merge, rows of other traces at the same times are new rows."""
    e = Engine(tmp_path, now_ns=clock)
    try:
        e.write_lines("cnosdb", "public", "\n".join(f"s,trace_id=t{i % 40},span_id=s{i} a={i} {1000 + i}"
                                                     for i in range(400)))
        e.checkpoint()
        assert e.database("cnosdb", "public").tables["s"].segments
        again = [f"s,trace_id=t{i % 40},span_id=s{i} b={i}i {1000 + i}" for i in range(0, 400, 3)]
        others = [f"s,trace_id=u{i},span_id=s{i} a=-1 {1000 + i}" for i in range(0, 400, 5)]
        e.write_lines("cnosdb", "public", "\n".join(again + others))
        assert q(e, "SELECT count(*) AS n FROM s") == [{"n": 400 + len(others)}]
        assert q(e, "SELECT count(*) AS n FROM s WHERE b IS NOT NULL AND a = CAST(b AS DOUBLE)") == [{"n": len(again)}]
    finally:
        e.close()


@pytest.mark.parametrize(("first", "second", "message"), [
    ("m f=1", "m f=1i", "DataSchemaError: Column 'f' type error, found I64 expected F64"),
    ("m f=1", 'm f="x"', "DataSchemaError: Column 'f' type error, found STRING expected F64"),
    ("m,t=a f=1", "m t=1", "DataSchemaError: Column 't' type error, found F64 expected TAG"),
    ("m f=1", "m,f=a g=1", "DataSchemaError: Column 'f' type error, found TAG expected F64"),
], ids=["double-then-bigint", "double-then-string", "tag-then-field", "field-then-tag"])
def test_type_conflict_rejects_whole_request(engine: Engine, first: str, second: str, message: str) -> None:
    engine.write_lines("cnosdb", "public", first + " 1")
    err = error(engine.write_lines, "cnosdb", "public", f"ok,x=1 g=1 2\n{second} 3")
    assert (err.status, err.code, err.message) == (422, "020004", message)
    assert q(engine, "SHOW TABLES") == [{"table_name": "m"}]
    assert q(engine, "SELECT count(*) AS n FROM m") == [{"n": 1}]


def test_in_request_conflict_writes_nothing(engine: Engine) -> None:
    err = error(engine.write_lines, "cnosdb", "public", "a f=1 1\nm f=1i 1\nm f=2 2")
    assert err.code == "050014"
    assert q(engine, "SHOW TABLES") == []


def test_ttl_rejects_old_writes_and_expires_data(tmp_path: Path, clock: Clock) -> None:
    """With one-day buckets (the default is a year: tests/lite_engine/test_ttl_buckets.py has the rules)."""
    e = Engine(tmp_path, now_ns=clock)
    e.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '2d' VNODE_DURATION '1d'")
    e.write_lines("cnosdb", "d", f"m,t=a f=1 {NOW - DAY}\nm,t=b f=2 {NOW}")
    err = error(e.write_lines, "cnosdb", "d", f"m,t=c f=1 {NOW}\nm,t=d f=1 {NOW - 3 * DAY}")
    assert (err.status, err.code, err.message) == (422, "030034", "Operation not support: create expired bucket")
    assert q(e, "SELECT t FROM m ORDER BY t", "d") == [{"t": "a"}, {"t": "b"}]
    clock.now += int(1.5 * DAY)
    e.execute("cnosdb", "public", "ALTER DATABASE d SET TTL '2d'")
    assert q(e, "SELECT t FROM m", "d") == [{"t": "b"}]
    e.close()
    clock.now += 2 * DAY
    e = Engine(tmp_path, now_ns=clock)
    assert q(e, "SELECT count(*) AS n FROM m", "d") == [{"n": 0}]
    e.close()


def test_precision_conversion(engine: Engine) -> None:
    engine.write_lines("cnosdb", "public", "m f=1 1700000000000", precision="MS")
    engine.write_lines("cnosdb", "public", "m g=1 1700000000000000", precision="us")
    engine.write_lines("cnosdb", "public", "m h=1 1700000000000000000", precision="s")
    assert q(engine, "SELECT CAST(time AS BIGINT) AS t, f, g, h FROM m") == [
        {"t": 1700000000000000000, "f": 1.0, "g": 1.0, "h": 1.0}]
    err = error(engine.write_lines, "cnosdb", "public", "m f=1", "ms")
    assert (err.code, err.message) == ("050014", "timestamp overflow")


def test_strict_write(engine: Engine) -> None:
    engine.execute("cnosdb", "public", "CREATE DATABASE s WITH STRICT_WRITE 'true'")
    err = error(engine.write_lines, "cnosdb", "s", "m f=1 1")
    assert err.code == "030019"
    engine.execute("cnosdb", "s", "CREATE TABLE m (f DOUBLE)")
    engine.write_lines("cnosdb", "s", "m f=1 1")
    assert q(engine, "SELECT f FROM m", "s") == [{"f": 1.0}]


def test_delete(engine: Engine) -> None:
    engine.write_lines("cnosdb", "public", "m,t=a f=1 1\nm,t=b f=2 2\nm,t=c f=3 3\nm f=4 4")
    engine.execute("cnosdb", "public", "DELETE FROM m WHERE t = 'a' OR time >= to_timestamp_nanos(3)")
    assert q(engine, "SELECT t, f FROM m") == [{"t": "b", "f": 2.0}]
    err = error(engine.execute, "cnosdb", "public", "DELETE FROM m WHERE f > 1")
    assert (err.code, err.message) == (
        "010005", "This feature is not implemented: Filtering on the field column on the tskv table in delete "
        "statement")
    engine.execute("cnosdb", "public", "DELETE FROM m")
    assert q(engine, "SELECT count(*) AS n FROM m") == [{"n": 0}]


def test_schema_widening_keeps_old_rows(engine: Engine) -> None:
    engine.write_lines("cnosdb", "public", "m,a=1 f=1 1")
    engine.write_lines("cnosdb", "public", "m,b=2 g=2i 2")
    assert q(engine, "SELECT a, b, f, g FROM m ORDER BY time") == [
        {"a": "1", "b": None, "f": 1.0, "g": None}, {"a": None, "b": "2", "f": None, "g": 2}]


def test_restart_replays_wal_and_ddl(tmp_path: Path, clock: Clock) -> None:
    e = Engine(tmp_path, now_ns=clock)
    e.execute("cnosdb", "public", "CREATE DATABASE d2")
    e.write_lines("cnosdb", "d2", "m,t=a f=1 1")
    e.execute("cnosdb", "public", "DROP DATABASE d2")
    e.execute("cnosdb", "public", "CREATE DATABASE d2")
    e.write_lines("cnosdb", "d2", "m,t=b f=2 2")
    e.write_lines("cnosdb", "public", "x f=1 1")
    e.wal.close()  # simulate a crash: no checkpoint
    e = Engine(tmp_path, now_ns=clock)
    assert q(e, "SELECT t FROM m", "d2") == [{"t": "b"}]
    assert q(e, "SELECT f FROM x") == [{"f": 1.0}]
    e.close()


def test_rewriting_the_same_row_then_closing_a_database_with_ttl(tmp_path: Path, clock: Clock) -> None:
    """An upsert of the only memtable row leaves an empty batch that TTL expiry at close must step over."""
    engine = Engine(tmp_path / "data", now_ns=clock)
    engine.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '7d'")
    line = f"m,t=a f=1i {clock()}"
    engine.write_lines("cnosdb", "d", line)
    engine.write_lines("cnosdb", "d", line)
    engine.close()
    reopened = Engine(tmp_path / "data", now_ns=clock)
    assert reopened.execute("cnosdb", "d", "SELECT count(*) AS n FROM m").to_pylist() == [{"n": 1}]
    reopened.close()
