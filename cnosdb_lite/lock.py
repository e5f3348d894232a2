"""One owner per data directory: an exclusive `flock` on `<data_dir>/LOCK`, held for the engine's life.

Two engines on one directory destroy it (each checkpoint deletes the WAL generations and the Parquet files
its own manifest does not name), so the second one must refuse before it reads or writes anything there.
`flock` is released by the kernel when the holder exits, even on `kill -9`, so a crash never leaves a stale
lock behind; the PID written into the file is only there to name the holder in the refusal.  The file is
never deleted: unlinking it would let a third process lock a fresh inode while the holder keeps the old one.
Within one process the lock is shared (counted per directory): ownership is a matter between processes, and
tests simulate a crash by abandoning an engine and opening another on the same directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path

LOCK_FILE = "LOCK"
_PID_WAIT_S = 0.5          # how long to wait for a holder that has the lock but has not written its PID yet
_held: dict[tuple[int, int], list[int]] = {}      # (st_dev, st_ino) of a locked directory -> [fd, users]
_held_lock = threading.Lock()


class DataDirLocked(Exception):
    """Another process holds the data directory; the message is one line naming it and the holder's PID."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process (PID unknown)"
        super().__init__(f"data directory {data_dir} is in use by {holder}; "
                         f"stop it or choose another data directory")


class DataDirLock:
    """A held lock on a data directory; `release` (idempotent) drops this holder's share of it."""

    def __init__(self, data_dir: Path, key: tuple[int, int]) -> None:
        self.data_dir = data_dir
        self._key: tuple[int, int] | None = key

    @classmethod
    def acquire(cls, data_dir: str | os.PathLike) -> DataDirLock:
        """Lock `data_dir` (created if missing) or raise `DataDirLocked`; reads nothing else there."""
        directory = Path(data_dir).absolute()
        directory.mkdir(parents=True, exist_ok=True)
        st = directory.stat()
        key = (st.st_dev, st.st_ino)
        with _held_lock:
            if key in _held:
                _held[key][1] += 1
                return cls(directory, key)
            fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _holder_pid(fd)
                os.close(fd)
                raise DataDirLocked(directory, pid) from None
            except BaseException:
                os.close(fd)
                raise
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _held[key] = [fd, 1]
        return cls(directory, key)

    def release(self) -> None:
        with _held_lock:
            if self._key is None:
                return
            key, self._key = self._key, None
            entry = _held[key]
            entry[1] -= 1
            if entry[1]:
                return
            del _held[key]
            fd = entry[0]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)            # no PID of a process that no longer owns the directory
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _holder_pid(fd: int) -> int | None:
    """The PID the holder wrote; it writes it right after locking, so an empty file is retried briefly."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)
