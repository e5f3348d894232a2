"""One owner per data directory: a second process refuses, the first is untouched, a crash frees the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnosdb_lite import Engine
from cnosdb_lite.lock import LOCK_FILE, DataDirLock, DataDirLocked

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
OPEN = textwrap.dedent("""
    import sys
    from cnosdb_lite import Engine
    from cnosdb_lite.lock import DataDirLocked
    try:
        e = Engine(sys.argv[1])
    except DataDirLocked as exc:
        print(exc)
        sys.exit(3)
    e.write_lines("cnosdb", "public", "m,w=child n=1i 5")
    print("opened", flush=True)
    if len(sys.argv) > 2:
        sys.stdin.read()
    e.close()
""")


def _open_in_child(data: Path, *extra: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", OPEN, str(data), *extra], capture_output=True, text=True,
                          env=ENV, timeout=60, **kwargs)


def _snapshot(data: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(data)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(data.rglob("*")) if p.is_file()}


def _count(e: Engine) -> int:
    return e.execute("cnosdb", "public", "SELECT count(*) AS n FROM m").to_pylist()[0]["n"]


def test_second_process_refuses_and_first_is_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    e = Engine(data)
    try:
        e.write_lines("cnosdb", "public", "m,w=a n=1i 1")
        e.checkpoint()
        e.write_lines("cnosdb", "public", "m,w=b n=1i 2")
        before = _snapshot(data)
        child = _open_in_child(data)
        assert child.returncode == 3, child.stderr
        message = child.stdout.strip()
        assert message == (f"data directory {data.absolute()} is in use by process {os.getpid()}; "
                           f"stop it or choose another data directory")
        assert _snapshot(data) == before                      # nothing read-then-written, nothing deleted
        e.write_lines("cnosdb", "public", "m,w=c n=1i 3")     # the owner keeps serving
        assert _count(e) == 3
    finally:
        e.close()
    assert (data / LOCK_FILE).read_text() == ""              # released: no stale PID
    assert _open_in_child(data).returncode == 0
    e = Engine(data)
    try:
        assert _count(e) == 4
    finally:
        e.close()


def test_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    child = subprocess.Popen([sys.executable, "-c", OPEN, str(data), "hold"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert child.stdout.readline().strip() == "opened"
        with pytest.raises(DataDirLocked) as refused:
            Engine(data)
        assert refused.value.pid == child.pid
        assert f"process {child.pid}" in str(refused.value)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.wait()
    e = Engine(data)
    try:
        assert _count(e) == 1
        assert (data / LOCK_FILE).read_text().strip() == str(os.getpid())
    finally:
        e.close()


def test_cli_refuses_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    e = Engine(data)
    try:
        cli = Path(sys.executable).with_name("cnosdb-lite")
        done = subprocess.run([str(cli), "--data-dir", str(data), "--http-addr", "127.0.0.1:0"],
                              capture_output=True, text=True, timeout=60)
    finally:
        e.close()
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"cnosdb-lite: error: data directory {data.absolute()} is in use by process {os.getpid()}; "
        f"stop it or choose another data directory"]


def test_engines_of_one_process_share_the_lock(tmp_path: Path) -> None:
    """Ownership is per process (tests reopen a directory to simulate a crash); released with the last."""
    first = DataDirLock.acquire(tmp_path)
    second = DataDirLock.acquire(tmp_path)
    first.release()
    first.release()                                            # idempotent
    assert _open_in_child(tmp_path).returncode == 3
    second.release()
    assert _open_in_child(tmp_path).returncode == 0


def test_engine_that_fails_to_open_releases_the_lock(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError):
        Engine(tmp_path)
    lock = DataDirLock.acquire(tmp_path)                       # fresh lock, not a shared leftover
    try:
        assert _open_in_child(tmp_path).returncode == 3
    finally:
        lock.release()
