"""Recovery from lost or torn Parquet segments, and crashes in the middle of checkpoints."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnosdb_lite import Engine

ROOT = Path(__file__).resolve().parents[2]


def _write(e: Engine, tag: str, n: int = 20, table: str = "m") -> None:
    e.write_lines("cnosdb", "public", "\n".join(f"{table},w={tag} n={j}i {1000 + j}" for j in range(n)))


def _counts(e: Engine, table: str = "m") -> dict[str, int]:
    rows = e.execute("cnosdb", "public", f"SELECT w, count(*) AS n FROM {table} GROUP BY w").to_pylist()
    return {r["w"]: r["n"] for r in rows}


def _segments(data: Path, table: str = "m") -> list[Path]:
    manifest = json.loads((data / "manifest.json").read_text())
    files = manifest["tenants"]["cnosdb"]["public"]["tables"][table]["files"]
    return [data / "cnosdb" / "public" / table / f for f in files]


def _crash(e: Engine) -> None:
    """As `kill -9` leaves it: acknowledged records are on disk, no checkpoint."""
    e.wal.close()


def _reopen_warnings(data: Path, caplog: pytest.LogCaptureFixture) -> tuple[Engine, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cnosdb_lite"):
        e = Engine(data)
    return e, [r.getMessage() for r in caplog.records]


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(40, len(data) // 2, 7):                     # inside the data pages, clear of the footer
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [Path.unlink, _truncate, _flip], ids=["deleted", "truncated", "corrupt"])
def test_segment_of_the_last_checkpoint_is_rebuilt_from_the_wal(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, damage) -> None:
    e = Engine(tmp_path)
    _write(e, "a")
    e.checkpoint()
    _write(e, "b")                                  # acknowledged after the lost segment's checkpoint
    _crash(e)
    [segment] = _segments(tmp_path)
    damage(segment)
    e, warnings = _reopen_warnings(tmp_path, caplog)
    try:
        assert _counts(e) == {"a": 20, "b": 20}
        assert any("event=segment_unreadable" in w and str(segment) in w for w in warnings)
        assert any("event=recovered" in w and "rows_lost=0" in w for w in warnings)
        assert segment.with_name(segment.name + ".corrupt").exists() == (damage is not Path.unlink)
    finally:
        e.close()
    e, warnings = _reopen_warnings(tmp_path, caplog)  # the directory is consistent again
    try:
        assert warnings == []
        assert _counts(e) == {"a": 20, "b": 20}
    finally:
        e.close()


def test_segment_written_by_a_clean_close_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    e = Engine(tmp_path)
    _write(e, "a")
    e.close()
    for segment in _segments(tmp_path):
        segment.unlink()
    e, warnings = _reopen_warnings(tmp_path, caplog)
    try:
        assert _counts(e) == {"a": 20}
        assert any("rows_lost=0" in w for w in warnings)
    finally:
        e.close()


def test_older_segment_is_lost_but_nothing_after_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A segment both kept manifests name has no WAL left: its rows are gone, all else is kept."""
    e = Engine(tmp_path)
    _write(e, "a")
    e.checkpoint()
    _write(e, "b", table="other")                   # leaves m's segment as it is: both manifests name it
    e.checkpoint()
    _write(e, "c")
    _crash(e)
    [segment] = _segments(tmp_path)
    segment.unlink()
    e, warnings = _reopen_warnings(tmp_path, caplog)
    try:
        assert _counts(e) == {"c": 20}
        assert _counts(e, "other") == {"b": 20}
        assert any("event=rows_lost" in w and str(segment) in w for w in warnings)
        _write(e, "d")
    finally:
        e.close()
    e, warnings = _reopen_warnings(tmp_path, caplog)
    try:
        assert warnings == []
        assert _counts(e) == {"c": 20, "d": 20}
    finally:
        e.close()


def test_checkpoint_keeps_the_previous_generation_only(tmp_path: Path) -> None:
    e = Engine(tmp_path)
    for tag in "abc":
        _write(e, tag)
        e.checkpoint()
    wal = sorted(p.name for p in (tmp_path / "wal").iterdir())
    previous = json.loads((tmp_path / "manifest.prev.json").read_text())
    current = json.loads((tmp_path / "manifest.json").read_text())
    assert (previous["wal_gen"], current["wal_gen"]) == (2, 3)
    assert wal == ["00000002.log", "00000003.log"]
    e.close()


def test_close_without_writes_does_not_checkpoint(tmp_path: Path) -> None:
    e = Engine(tmp_path)
    _write(e, "a")
    e.close()
    manifest = (tmp_path / "manifest.json").read_text()
    Engine(tmp_path).close()
    assert (tmp_path / "manifest.json").read_text() == manifest


WRITER = textwrap.dedent("""
    import sys
    from cnosdb_lite import engine
    engine.CHECKPOINT_WAL_BYTES = 30_000              # a checkpoint every few writes
    e = engine.Engine(sys.argv[1])
    i = 0
    while True:
        table = "m" if i % 3 else "o"
        e.write_lines("cnosdb", "public", "\\n".join(f"{table},w=w{i} n={j}i {i * 1000 + j}" for j in range(200)))
        print(i, flush=True)
        i += 1
""")


@pytest.mark.parametrize("kill_after", [7, 23, 41])
def test_kill_during_frequent_checkpoints_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                        kill_after: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env=env)
    acked = -1
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait()
    assert acked >= kill_after
    e, warnings = _reopen_warnings(tmp_path, caplog)
    try:
        assert warnings == []
        counts = {**_counts(e), **_counts(e, "o")}
        assert all(counts.get(f"w{i}") == 200 for i in range(acked + 1))
    finally:
        e.close()
