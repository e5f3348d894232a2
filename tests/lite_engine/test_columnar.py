"""Columnar writes (`Engine.write_columns`): the rows, errors, TTL and upserts of the same line protocol, and the
same durability (the WAL logs them as Arrow IPC and replays them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cnosdb_lite import CnosDBError, Engine
from cnosdb_lite.columnar import TableRows
from cnosdb_lite.lp_exact import BOOL, F64, I64, STRING, TAG, U64
from cnosdb_lite.table import ARROW

from .fake_clock import NOW, Clock

# The same request twice: as line protocol, and as the columns `line_protocol.parse` makes of it.
LINES = "\n".join([
    f'm,host=a,region=eu s="x y",n=1i,u=7u,f=1.5,b=true {NOW}',
    f'm,host=b f=2,b=false {NOW + 1}',
    f'm,host=a,region=eu n=3i {NOW}',                       # the first row again: an upsert within the request
    f'other,k=v\\ w s="q\\"uote" {NOW + 2}',
])


def columns(table: str, times: list[int], **cells: tuple[str, list[Any]]) -> dict[str, TableRows]:
    arrays = [pa.array(times, pa.int64())] + [pa.array(values, ARROW[kind]) for kind, values in cells.values()]
    data = pa.RecordBatch.from_arrays(arrays, names=["time", *cells])
    return {table: TableRows({name: kind for name, (kind, _) in cells.items()}, data)}


REQUEST = {
    **columns("m", [NOW, NOW + 1, NOW], host=(TAG, ["a", "b", "a"]), region=(TAG, ["eu", None, "eu"]),
              s=(STRING, ["x y", None, None]), n=(I64, [1, None, 3]), u=(U64, [7, None, None]),
              f=(F64, [1.5, 2.0, None]), b=(BOOL, [True, False, None])),
    **columns("other", [NOW + 2], k=(TAG, ["v w"]), s=(STRING, ['q"uote'])),
}


def rows(e: Engine, table: str) -> list[dict[str, Any]]:
    """The table's rows in time order, times as int nanoseconds."""
    result = e.execute("cnosdb", "public", f"SELECT * FROM {table} ORDER BY time")
    return result.set_column(0, "time", result.column("time").cast(pa.int64())).to_pylist()


def described(e: Engine, table: str) -> list[dict[str, Any]]:
    return sorted(e.execute("cnosdb", "public", f"DESCRIBE TABLE {table}").to_pylist(), key=repr)


def test_columns_store_what_the_same_line_protocol_stores(tmp_path: Path, clock: Clock) -> None:
    by_lines, by_columns = Engine(tmp_path / "lines", now_ns=clock), Engine(tmp_path / "columns", now_ns=clock)
    try:
        by_lines.write_lines("cnosdb", "public", LINES)
        by_columns.write_columns("cnosdb", "public", REQUEST)
        for table in ("m", "other"):
            assert rows(by_columns, table) == rows(by_lines, table)
            assert described(by_columns, table) == described(by_lines, table)
        assert len(rows(by_columns, "m")) == 2
    finally:
        by_lines.close()
        by_columns.close()


@pytest.mark.parametrize(("first", "second"), [
    ({"n": (I64, [1])}, {"n": (F64, [1.0])}),
    ({"n": (TAG, ["a"])}, {"n": (STRING, ["a"])}),
    ({"b": (BOOL, [True])}, {"b": (U64, [1])}),
])
def test_a_type_conflict_is_the_error_of_line_protocol_and_writes_nothing(
        engine: Engine, first: dict[str, tuple[str, list[Any]]], second: dict[str, tuple[str, list[Any]]]) -> None:
    engine.write_columns("cnosdb", "public", columns("m", [NOW], **first))
    [(name, (kind, _))] = second.items()
    kind_text = {I64: "1i", F64: "1", STRING: '"a"', U64: "1u"}
    with pytest.raises(CnosDBError) as by_lines:
        engine.write_lines("cnosdb", "public", f"m {name}={kind_text[kind]} {NOW + 1}")
    request = {**columns("fresh", [NOW], x=(I64, [5])), **columns("m", [NOW + 1], **second)}
    with pytest.raises(CnosDBError) as by_columns:
        engine.write_columns("cnosdb", "public", request)
    assert (by_columns.value.code, by_columns.value.message) == (by_lines.value.code, by_lines.value.message)
    assert "fresh" not in engine.database("cnosdb", "public").tables     # all or nothing


def test_points_past_the_ttl_are_refused_like_line_protocol(engine: Engine) -> None:
    engine.execute("cnosdb", "public", "CREATE DATABASE short WITH TTL '1d'")
    old = NOW - 3 * 24 * 3600 * 10**9
    with pytest.raises(CnosDBError) as by_lines:
        engine.write_lines("cnosdb", "short", f"m v=1 {old}")
    with pytest.raises(CnosDBError) as by_columns:
        engine.write_columns("cnosdb", "short", columns("m", [old], v=(F64, [1.0])))
    assert (by_columns.value.code, by_columns.value.message) == (by_lines.value.code, by_lines.value.message)


@pytest.mark.parametrize(("kinds", "names", "arrays", "message"), [
    ({"v": F64}, ["t", "v"], [pa.array([NOW]), pa.array([1.0])], "first column must be 'time'"),
    ({"v": F64}, ["time", "v"], [pa.array([NOW], pa.timestamp("ns")), pa.array([1.0])], "int64 nanoseconds"),
    ({"v": F64}, ["time", "v"], [pa.array([None], pa.int64()), pa.array([1.0])], "every row needs a time"),
    ({"w": F64}, ["time", "v"], [pa.array([NOW]), pa.array([1.0])], "those of its kinds"),
    ({"time": F64}, ["time", "time"], [pa.array([NOW]), pa.array([1.0])], "'time' is no column of its kinds"),
    ({"v": "F32"}, ["time", "v"], [pa.array([NOW]), pa.array([1.0])], "no kind 'F32'"),
    ({"v": I64}, ["time", "v"], [pa.array([NOW]), pa.array([1.0])], "of kind I64 must be int64"),
])
def test_rows_of_another_shape_are_a_value_error(engine: Engine, kinds: dict[str, str], names: list[str],
                                                  arrays: list[pa.Array], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        engine.write_columns("cnosdb", "public", {"m": TableRows(kinds, pa.RecordBatch.from_arrays(arrays, names))})
    assert "m" not in engine.database("cnosdb", "public").tables


def _crash(e: Engine) -> None:
    """As `kill -9` leaves it: acknowledged records are on disk, no checkpoint."""
    e.wal.close()


def test_columnar_writes_are_replayed_after_a_crash(tmp_path: Path, clock: Clock) -> None:
    data = tmp_path / "data"
    e = Engine(data, now_ns=clock)
    e.write_columns("cnosdb", "public", REQUEST)
    e.write_lines("cnosdb", "public", f"m,host=c n=9i {NOW + 5}")          # records of both kinds, interleaved
    e.write_columns("cnosdb", "public", columns("m", [NOW + 1], host=(TAG, ["b"]), n=(I64, [4])))   # an upsert
    before = {table: rows(e, table) for table in ("m", "other")}
    _crash(e)
    e = Engine(data, now_ns=clock)
    try:
        assert {table: rows(e, table) for table in ("m", "other")} == before
        assert [r["n"] for r in before["m"]] == [3, 4, 9]
        e.write_columns("cnosdb", "public", columns("m", [NOW + 6], host=(TAG, ["d"]), n=(I64, [10])))
        e.checkpoint()                                                  # columns flushed to segments
        e.write_columns("cnosdb", "public", columns("m", [NOW + 7], host=(TAG, ["e"]), n=(I64, [11])))
        after = rows(e, "m")
        _crash(e)
        e = Engine(data, now_ns=clock)
        assert rows(e, "m") == after and len(after) == 5
    finally:
        e.close()
    e = Engine(data, now_ns=clock)                                      # and after a clean close
    try:
        assert rows(e, "m") == after
    finally:
        e.close()


def test_a_torn_columnar_record_is_not_replayed(tmp_path: Path, clock: Clock) -> None:
    data = tmp_path / "data"
    e = Engine(data, now_ns=clock)
    e.write_columns("cnosdb", "public", columns("m", [NOW], v=(F64, [1.0])))
    e.write_columns("cnosdb", "public", columns("m", [NOW + 1], v=(F64, [2.0])))
    _crash(e)
    [log] = sorted((data / "wal").glob("*.log"))
    with open(log, "r+b") as f:                                         # the last record, cut short
        f.truncate(log.stat().st_size - 10)
    e = Engine(data, now_ns=clock)
    try:
        assert [r["v"] for r in e.execute("cnosdb", "public", "SELECT v FROM m").to_pylist()] == [1.0]
        e.write_columns("cnosdb", "public", columns("m", [NOW + 2], v=(F64, [3.0])))   # follows the good ones
    finally:
        e.close()
    e = Engine(data, now_ns=clock)
    try:
        assert sorted(r["v"] for r in e.execute("cnosdb", "public", "SELECT v FROM m").to_pylist()) == [1.0, 3.0]
    finally:
        e.close()
