"""Durability: a write that returned survives SIGKILL of the process right after it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnosdb_lite import Engine

# argv: the data directory, then "lines" (line protocol) or "columns" (`Engine.write_columns`).
WRITER = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from cnosdb_lite import Engine
    from cnosdb_lite.columnar import TableRows
    e = Engine(sys.argv[1])
    i = 0
    while True:
        if sys.argv[2] == "lines":
            e.write_lines("cnosdb", "public", "\\n".join(f"m,w=w{i} n={j}i {i * 1000 + j}" for j in range(50)))
        else:
            data = pa.RecordBatch.from_pydict({"time": pa.array([i * 1000 + j for j in range(50)], pa.int64()),
                                               "w": [f"w{i}"] * 50, "n": pa.array(range(50), pa.int64())})
            e.write_columns("cnosdb", "public", {"m": TableRows({"w": "TAG", "n": "I64"}, data)})
        if i == 3:
            e.execute("cnosdb", "public", "CREATE DATABASE other")
        print(i, flush=True)
        i += 1
""")


@pytest.mark.parametrize("written_as", ["lines", "columns"])
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, written_as: str) -> None:
    data = tmp_path / "data"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(data), written_as], stdout=subprocess.PIPE, text=True,
                            env=env)
    acked = -1
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 20:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait()
    assert acked >= 20
    e = Engine(data)
    try:
        rows = e.execute("cnosdb", "public", "SELECT w, count(*) AS n FROM m GROUP BY w").to_pylist()
        counts = {r["w"]: r["n"] for r in rows}
        assert all(counts.get(f"w{i}") == 50 for i in range(acked + 1))
        assert {"database_name": "other"} in e.execute("cnosdb", "public", "SHOW DATABASES").to_pylist()
    finally:
        e.close()


# Flushes and compactions all the time: a memtable of a few KB, merges of 2 segments, and the same keys
# written again (upserts across segments).  The child says when it is inside a flush or a merge
# (`HOLD_AT`), after the segment file is written and before the manifest names it, and waits there.
BUSY_WRITER = textwrap.dedent("""
    import sys, threading, time
    from cnosdb_lite import compaction, engine, storage
    compaction.FANIN = 2
    out = threading.Lock()                # the merge thread and the writer print whole lines

    def say(text):
        with out:
            sys.stdout.write(f"{text}\\n")
            sys.stdout.flush()

    hold_at, hold_after = sys.argv[2], int(sys.argv[3])
    real_write = storage.write_segment
    acked = -1

    def write_segment(path, *args, **kwargs):
        real_write(path, *args, **kwargs)
        merging = compaction.threading.current_thread().name == "cnosdb-lite-compactor"
        if acked >= hold_after and hold_at == ("merge" if merging else "flush"):
            say(hold_at)
            time.sleep(60)

    storage.write_segment = write_segment
    e = engine.Engine(sys.argv[1], memtable_bytes=20_000)
    i = 0
    while True:
        key = i % 40                      # every 40 writes, the same series and times again: upserts
        e.write_lines("cnosdb", "public", "\\n".join(f"m,w=w{key},trace_id=t{j % 7} n={i}i,j={j}i {key * 1000 + j}"
                                                      for j in range(100)))
        acked = i
        say(i)
        i += 1
""")


def _kill_busy_writer(data: Path, hold_at: str, hold_after: int) -> int:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", BUSY_WRITER, str(data), hold_at, str(hold_after)],
                            stdout=subprocess.PIPE, text=True, env=env)
    acked, held = -1, False
    try:
        for line in proc.stdout:
            if line.strip() == hold_at:
                held = True
                proc.send_signal(signal.SIGKILL)
                break
            acked = int(line)
    finally:
        proc.kill()
        proc.wait()
    assert held, f"the writer never reached a {hold_at}"
    return acked


@pytest.mark.parametrize(("hold_at", "hold_after"), [("flush", 3), ("flush", 50), ("merge", 10), ("merge", 60)])
def test_kill_inside_a_flush_or_a_merge_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                      hold_at: str, hold_after: int) -> None:
    data = tmp_path / "data"
    acked = _kill_busy_writer(data, hold_at, hold_after)
    with caplog.at_level(logging.WARNING, logger="cnosdb_lite"):
        e = Engine(data)
    try:
        assert [r.getMessage() for r in caplog.records] == []
        rows = e.execute("cnosdb", "public", "SELECT w, count(*) AS rows, max(n) AS last FROM m GROUP BY w").to_pylist()
        got = {r["w"]: (r["rows"], r["last"]) for r in rows}
        # every series once per time (upserts merged), with at least its last acknowledged write
        for i in range(max(0, acked - 39), acked + 1):
            assert got[f"w{i % 40}"][0] == 100 and got[f"w{i % 40}"][1] >= i
        assert all(rows == 100 for rows, _ in got.values())
        _write_more_and_reopen(e, data)
    finally:
        e.close()


def _write_more_and_reopen(e: Engine, data: Path) -> None:
    """The directory works on: more writes, a clean close, a reopen with nothing to repair."""
    e.write_lines("cnosdb", "public", "m,w=after,trace_id=t0 n=1i 1")
    e.close()
    again = Engine(data)
    try:
        assert again.execute("cnosdb", "public", "SELECT n FROM m WHERE w = 'after'").to_pylist() == [{"n": 1}]
    finally:
        again.close()
