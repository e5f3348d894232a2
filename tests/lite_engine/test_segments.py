"""Rows on disk: segments, sparse columns, upsert across segments and compaction, the tag summaries that
answer SHOW TAG VALUES, and statements narrowed to the segments that may hold a trace."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cnosdb_lite import Engine, compaction, segments
from cnosdb_lite import engine as engine_module
from cnosdb_lite.table import Table

from .fake_clock import Clock


def q(e: Engine, sql: str) -> list[dict]:
    result = e.execute("cnosdb", "public", sql)
    assert result is not None
    plain = [f.with_type(pa.int64()) if pa.types.is_timestamp(f.type) else f for f in result.schema]
    return result.cast(pa.schema(plain)).to_pylist()


def _table(e: Engine, name: str = "m") -> Table:
    return e.tenants["cnosdb"]["public"].tables[name]


def _spans(e: Engine, first: int, traces: int, service: str = "a") -> None:
    lines = [f"m,trace_id=t{t},span_id=s{t}_{k},service={service},name=op{k % 3} d={t * 10 + k}i {t * 1000 + k}"
             for t in range(first, first + traces) for k in range(4)]
    e.write_lines("cnosdb", "public", "\n".join(lines))


@pytest.fixture
def disk(tmp_path: Path, clock: Clock) -> Engine:
    e = Engine(tmp_path / "data", now_ns=clock, compaction=False)
    yield e
    e.close()


def test_flushed_rows_live_in_segments_not_in_memory(tmp_path: Path, clock: Clock) -> None:
    e = Engine(tmp_path / "data", now_ns=clock, memtable_bytes=4_000, compaction=False)
    try:
        for first in range(0, 50, 10):
            _spans(e, first, 10)
        table = _table(e)
        assert len(table.segments) >= 2 and table.mem_rows <= 40
        assert all(s.path.exists() for s in table.segments)
        assert q(e, "SELECT count(*) AS n, count(DISTINCT trace_id) AS t FROM m") == [{"n": 200, "t": 50}]
    finally:
        e.close()


def test_sparse_columns_are_absent_from_segments_and_read_as_null(disk: Engine) -> None:
    disk.write_lines("cnosdb", "public", "m,t=a x=1i 1\nm,t=b x=2i 2")
    disk.checkpoint()
    disk.write_lines("cnosdb", "public", "m,t=c y=\"v\" 3")
    disk.checkpoint()
    first, second = _table(disk).segments
    assert "y" not in pq.read_schema(first.path).names and "x" not in pq.read_schema(second.path).names
    assert q(disk, "SELECT t, x, y FROM m ORDER BY t") == [
        {"t": "a", "x": 1, "y": None}, {"t": "b", "x": 2, "y": None}, {"t": "c", "x": None, "y": "v"}]
    assert [r["column_name"] for r in q(disk, "DESCRIBE TABLE m")] == ["time", "t", "x", "y"]
    with pytest.raises(Exception, match="type"):
        disk.write_lines("cnosdb", "public", "m,t=d x=\"text\" 4")


def test_upsert_across_segments_compaction_and_restart(tmp_path: Path, clock: Clock,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compaction, "FANIN", 2)
    e = Engine(tmp_path / "data", now_ns=clock)
    try:
        for round_ in range(4):
            e.write_lines("cnosdb", "public", "\n".join(f"m,k=k{i} r{round_}={round_}i {i}" for i in range(100)))
            e.checkpoint()
        assert e.wait_for_compaction(60)
        assert len(_table(e).segments) < 4
        e.write_lines("cnosdb", "public", "m,k=k5 r0=99i 5")
    finally:
        e.close()
    e = Engine(tmp_path / "data", now_ns=clock)
    try:
        assert q(e, "SELECT count(*) AS n FROM m") == [{"n": 100}]
        assert q(e, "SELECT r0, r1, r2, r3 FROM m WHERE k = 'k5'") == [{"r0": 99, "r1": 1, "r2": 2, "r3": 3}]
    finally:
        e.close()


def test_a_query_keeps_the_files_it_planned_while_a_checkpoint_drops_them(disk: Engine,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for round_ in range(2):
        disk.write_lines("cnosdb", "public", "\n".join(f"m,k=k{i} r{round_}={round_}i {i}" for i in range(100)))
        disk.checkpoint()
    planned = {segment.path for segment in _table(disk).segments}
    replaced: set[Path] = set()
    run = Engine._run

    def run_after_a_rewrite(self: Engine, *args: object) -> object:
        self.write_lines("cnosdb", "public", "m,k=k5 r0=99i 5")  # an upsert hit: its segment is rewritten
        self.checkpoint()  # the old file leaves the manifest (kept while the previous manifest names it)
        self.checkpoint()  # and the previous manifest: unreferenced now
        replaced.update(planned - {segment.path for segment in _table(self).segments})
        assert replaced and all(path.exists() for path in replaced)  # yet still there for this query
        return run(self, *args)

    monkeypatch.setattr(Engine, "_run", run_after_a_rewrite)
    assert q(disk, "SELECT count(*) AS n, sum(r1) AS s FROM m") == [{"n": 100, "s": 100}]
    monkeypatch.setattr(Engine, "_run", run)
    assert not any(path.exists() for path in replaced)  # deleted when the query ended
    assert q(disk, "SELECT r0 FROM m WHERE k = 'k5'") == [{"r0": 99}]


def test_show_tag_values_from_summaries_matches_the_rows(disk: Engine) -> None:
    _spans(disk, 0, 5, "a")
    disk.checkpoint()
    _spans(disk, 5, 5, "b")
    disk.checkpoint()
    _spans(disk, 10, 2, "c")                                      # still in the memtable
    assert _table(disk).tag_summary(["name", "service"]) is not None
    for where in ("", " WHERE service = 'b'", " WHERE service IN ('a', 'c') AND name <> 'op1'"):
        got = q(disk, f"SHOW TAG VALUES FROM m WITH KEY IN (name, service){where}")
        rows = q(disk, f"SELECT DISTINCT name, service FROM m{where.replace('IN', 'IN') if where else ''}")
        expected = sorted({("name", r["name"]) for r in rows} | {("service", r["service"]) for r in rows})
        assert [(r["key"], r["value"]) for r in got] == expected
    disk.execute("cnosdb", "public", "DELETE FROM m WHERE service = 'b'")
    assert q(disk, "SHOW TAG VALUES FROM m WITH KEY = service") == [
        {"key": "service", "value": "a"}, {"key": "service", "value": "c"}]


@pytest.mark.parametrize("by_service", [False, True], ids=["trace order", "service order"])
def test_a_statement_pinned_to_traces_reads_the_right_rows(disk: Engine, by_service: bool,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """In either segment order (the service order adds the services of the traces to the statement)."""
    monkeypatch.setattr(segments, "SORT_BY_SERVICE", by_service)
    for first in range(0, 40, 10):
        for t in range(first, first + 10):
            _spans(disk, t, 1, f"svc{t % 3}")
        disk.execute("cnosdb", "public", f"INSERT INTO m (time, trace_id, span_id, d) VALUES ({first * 1000 + 7}, "
                                         f"'t{first + 2}', 'orphan', 1)")       # a span without a service
        disk.checkpoint()
    _spans(disk, 40, 3)
    statements = [
        "SELECT trace_id, span_id FROM m WHERE trace_id = 't12' ORDER BY span_id",
        "SELECT trace_id, count(*) AS n FROM m WHERE trace_id IN ('t1', 't25', 't41', 'nope') GROUP BY trace_id "
        "ORDER BY trace_id",
        "SELECT trace_id, d FROM m WHERE trace_id IN ('t3') UNION ALL SELECT trace_id, d FROM m "
        "WHERE trace_id IN ('t33', 't42') ORDER BY trace_id, d",
        "SELECT c.trace_id, count(*) AS n FROM m AS c JOIN m AS p ON c.trace_id = p.trace_id AND c.d = p.d + 1 "
        "WHERE c.trace_id IN ('t7', 't30') AND p.trace_id IN ('t7', 't30') GROUP BY c.trace_id ORDER BY 1",
        "SELECT m.span_id FROM m WHERE m.trace_id = 't20' AND m.d > 201 ORDER BY 1",
        "SELECT span_id, service FROM m WHERE trace_id = 't22' OR trace_id = 't41' ORDER BY 1",
        "SELECT trace_id, count(*) AS n FROM m WHERE trace_id IN ('t2', 't12') AND d >= 0 GROUP BY 1 ORDER BY 1",
        "SELECT * FROM m WHERE trace_id = 't12' ORDER BY span_id",             # one segment, read directly
        "SELECT * FROM m WHERE trace_id IN ('t41') ORDER BY span_id",          # only memtable rows
        "SELECT * FROM m WHERE trace_id IN ('nope') ORDER BY span_id",         # nothing anywhere
        "SELECT trace_id, span_id FROM m WHERE trace_id IN ('t11', 't13', 't31') ORDER BY 1, 2",  # two in one
    ]
    narrowed = [q(disk, sql) for sql in statements]
    services = {"svc0", "svc1", "svc2", segments.NO_SERVICE} if by_service else {segments.NO_SERVICE}
    assert all(set(segment.ids.blooms) <= services for segment in _table(disk).segments if segment.ids)
    disk.checkpoint()
    for segment in _table(disk).segments:                        # no bloom filters: every segment is read
        segment.ids = None
        segment.summary = None
    assert [q(disk, sql) for sql in statements] == narrowed     # (still narrowed: the memtable to the traces)
    monkeypatch.setattr(engine_module, "_narrowed", lambda *args: None)
    assert [q(disk, sql) for sql in statements] == narrowed     # the whole table, as without segments
    assert narrowed[0] == [{"trace_id": "t12", "span_id": s} for s in ["orphan", "s12_0", "s12_1", "s12_2", "s12_3"]]
    assert [r["n"] for r in narrowed[1]] == [4, 4, 4]
    assert [r["n"] for r in narrowed[3]] == [3, 3]
    assert [r["service"] for r in narrowed[5]] == [None] + ["svc1"] * 4 + ["a"] * 4
    assert [r["n"] for r in narrowed[6]] == [5, 5]
    assert [sorted(r) for r in narrowed[7][:1] + narrowed[8][:1]] == [sorted(q(disk, "SELECT * FROM m LIMIT 1")[0])] * 2
    assert len(narrowed[8]) == 4 and narrowed[9] == []
    assert len(narrowed[10]) == 12


def test_open_reads_segment_metadata_not_rows(tmp_path: Path, clock: Clock) -> None:
    """Segments both kept manifests name (not written by the last checkpoint) are not read at start-up."""
    e = Engine(tmp_path / "data", now_ns=clock, compaction=False)
    _spans(e, 0, 10)
    e.checkpoint()
    e.write_lines("cnosdb", "public", "other f=1 1")
    e.checkpoint()
    [segment] = _table(e).segments
    e.close()
    column = pq.read_metadata(segment.path).row_group(0).column(pq.read_schema(segment.path).names.index("d"))
    at = column.data_page_offset + column.total_compressed_size // 2     # inside the data page of field d
    data = bytearray(segment.path.read_bytes())
    data[at:at + 10] = b"\xff" * 10
    segment.path.write_bytes(bytes(data))
    e = Engine(tmp_path / "data", now_ns=clock, compaction=False)
    try:
        assert [s.rows for s in _table(e).segments] == [40]
        assert q(e, "SHOW TAG VALUES FROM m WITH KEY = service") == [{"key": "service", "value": "a"}]
    finally:
        e.close()


def test_upsert_and_delete_rewrite_a_segment_a_batch_at_a_time(disk: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "ROW_GROUP_ROWS", 64)              # many row groups, read one by one
    _spans(disk, 0, 100, "a")
    disk.checkpoint()
    [segment] = _table(disk).segments
    assert pq.ParquetFile(segment.path).metadata.num_row_groups > 4
    disk.write_lines("cnosdb", "public", "m,trace_id=t42,span_id=s42_1,service=a,name=op1 e=7i 42001")
    [rewritten] = _table(disk).segments
    assert rewritten.path != segment.path and rewritten.rows == 399
    assert q(disk, "SELECT d, e FROM m WHERE span_id = 's42_1'") == [{"d": 421, "e": 7}]
    disk.execute("cnosdb", "public", "DELETE FROM m WHERE trace_id = 't7' OR name = 'op2'")
    assert q(disk, "SELECT count(*) AS n FROM m") == [{"n": 400 - 100 - 3}]   # op2: 100 rows, t7: 3 more
    assert q(disk, "SHOW TAG VALUES FROM m WITH KEY = name") == [
        {"key": "name", "value": "op0"}, {"key": "name", "value": "op1"}]
    disk.execute("cnosdb", "public", "DELETE FROM m WHERE service = 'a'")
    assert _table(disk).segments == [] and q(disk, "SELECT count(*) AS n FROM m") == [{"n": 0}]


def test_close_gives_up_a_merge_in_progress(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    merging = threading.Event()
    real_track = compaction._Stats.track

    def slow_track(self, batches):                             # a merge that would take minutes
        for batch in real_track(self, batches):
            merging.set()
            time.sleep(0.5)
            yield batch

    monkeypatch.setattr(compaction, "FANIN", 2)
    monkeypatch.setattr(compaction._Stats, "track", slow_track)
    e = Engine(tmp_path / "data", now_ns=clock)
    for first in (0, 2500):                                     # 20,000 rows: a merge streams 10 batches
        _spans(e, first, 2500)
        e.checkpoint()
    assert merging.wait(30)
    started = time.monotonic()
    e.close()
    assert time.monotonic() - started < 5
    e = Engine(tmp_path / "data", now_ns=clock, compaction=False)
    try:
        assert q(e, "SELECT count(*) AS n FROM m") == [{"n": 20_000}]
        assert len(_table(e).segments) == 2
        assert not list((tmp_path / "data" / "cnosdb" / "public" / "m").glob("*.tmp"))
    finally:
        e.close()


def test_merge_of_sorted_streams_is_sorted_whatever_the_batches() -> None:
    """Every row once, in key order (nulls last, ties in any order), for any batch sizes and empty inputs."""
    import random

    import pyarrow as pa

    rnd = random.Random(11)
    keys = [("service", "ascending"), ("trace_id", "ascending"), ("time", "ascending")]
    schema = pa.schema([("service", pa.string()), ("trace_id", pa.string()), ("time", pa.int64()),
                        ("row", pa.string())])
    inputs = []
    for source in range(6):
        n = rnd.randrange(0, 300) if source else 0
        rows = pa.table({"service": [rnd.choice(["a", "b", None]) for _ in range(n)],
                         "trace_id": [rnd.choice(["t1", "t2", "t3", None]) for _ in range(n)],
                         "time": [rnd.randrange(20) for _ in range(n)],
                         "row": [f"{source}/{i}" for i in range(n)]}, schema=schema)
        inputs.append(rows.sort_by(keys))
    streams = [iter(rows.to_batches(max_chunksize=rnd.randrange(1, 40))) for rows in inputs]
    out = pa.Table.from_batches(list(compaction.merged(streams, keys)))
    whole = pa.concat_tables(inputs)
    assert sorted(out.column("row").to_pylist()) == sorted(whole.column("row").to_pylist())
    names = [k for k, _ in keys]
    assert out.select(names) == whole.sort_by(keys).select(names)
