"""Durability: a write-ahead log with group commit, Parquet segments, and a manifest that ties them together.

Layout under `data_dir`:
- `manifest.json`: catalog (tenants, databases, options, table schemas) and, per table, its Parquet segments
  with their metadata (rows, time range, tag summary, trace-ID bloom filters: module `segments`), plus
  `wal_gen`, the first WAL generation not contained in those files.
  Replaced atomically (write, fsync, rename, fsync dir), so it always describes a complete state.
- `wal/<gen>.log`: records `[u32 length][u32 crc32][header JSON \\n body]`, one per acknowledged write or
  statement; the body is line protocol or SQL text, or Arrow IPC streams (a columnar write, module `columnar`).
  Writers append under the engine lock and then call `sync(offset)`: whoever fsyncs first covers
  every record appended before it (group commit), so concurrent writers share fsyncs.  A torn tail after a
  crash fails its length/CRC check and is ignored (it was never acknowledged).
- `<tenant>/<db>/<table>/<id>.parquet`: immutable segments (module `segments`: one time partition each,
  sorted, page index, page checksums).  Names are percent-encoded so that any table name (CnosDB's trace
  columns contain `/`) is a safe path.
- `manifest.prev.json`: the manifest the last checkpoint replaced.  Its Parquet files and the WAL from its
  `wal_gen` on are kept until the next checkpoint, so a segment the last checkpoint wrote that turns out
  lost or torn can be rebuilt (module `recovery`).
- `LOCK`: the data directory's owner (module `lock`).
A checkpoint flushes every memtable into new segments (file and directory fsynced), commits a manifest with
a new WAL generation, and then deletes the WAL files and Parquet files that neither the new nor the previous
manifest needs (nor a merge in progress).  Segments replaced between checkpoints (upsert, DELETE, TTL,
compaction) are new files too, so the committed manifest always names intact ones.  Recovery loads the
manifest, checks the segments' footers (reading the last checkpoint's new segments whole), and replays
the WAL generations from `wal_gen` on.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

# A decoded JSON object: a manifest or a WAL record header. Its shape is the format described above,
# checked where it is read, not by the type checker.
JsonObject = dict[str, Any]

_FRAME = struct.Struct("<II")


def safe_name(name: str) -> str:
    """A file-system-safe, reversible, distinct encoding of a tenant/database/table name."""
    encoded = quote(name, safe="")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded or "%00"


class Wal:
    """Append-only log of one generation; see the module docstring for framing and group commit."""

    def __init__(self, directory: Path, gen: int) -> None:
        make_dirs(directory)
        self.directory = directory
        self.gen = gen
        path = wal_path(directory, gen)
        created = not path.exists()
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the log's life
        if created:                    # the file's name must be durable before a record in it is acknowledged
            fsync_dir(directory)
        self._written = self._file.tell()
        self._synced = self._written
        self._sync_lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._written

    def append(self, header: JsonObject, body: str | bytes) -> int:
        """Write one record (caller holds the engine lock); returns the offset to pass to `sync`."""
        head = json.dumps(header, separators=(",", ":")).encode() + b"\n"
        data = body.encode() if isinstance(body, str) else body    # written as is: not copied again
        size = len(head) + len(data)
        self._file.write(_FRAME.pack(size, zlib.crc32(data, zlib.crc32(head))) + head)
        self._file.write(data)
        self._written += _FRAME.size + size
        return self._written

    def sync(self, offset: int) -> None:
        """Return once everything up to `offset` is on stable storage (a closed log was fsynced)."""
        if self._synced >= offset:
            return
        with self._sync_lock:
            if self._synced >= offset or self._file.closed:
                return
            target = self._written
            self._file.flush()
            os.fsync(self._file.fileno())
            self._synced = max(self._synced, target)

    def close(self) -> None:
        with self._sync_lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._synced = self._written
            self._file.close()


def wal_generations(directory: Path) -> list[int]:
    if not directory.exists():
        return []
    return sorted(int(p.stem) for p in directory.glob("*.log") if p.stem.isdigit())


def replay(directory: Path, from_gen: int) -> Iterator[tuple[JsonObject, bytes]]:
    """Every intact record of the generations ≥ from_gen, in order, its body as logged (text encoded as
    UTF-8); stops a file at a torn tail."""
    for gen in wal_generations(directory):
        if gen < from_gen:
            continue
        path = wal_path(directory, gen)
        data = path.read_bytes()
        pos = 0
        while pos + _FRAME.size <= len(data):
            length, crc = _FRAME.unpack_from(data, pos)
            payload = data[pos + _FRAME.size:pos + _FRAME.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            header, _, body = payload.partition(b"\n")
            yield json.loads(header), body
            pos += _FRAME.size + length
        if pos < len(data):                         # drop the torn tail so new records follow good ones
            with open(path, "r+b") as f:
                f.truncate(pos)


def wal_path(directory: Path, gen: int) -> Path:
    return directory / f"{gen:08d}.log"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """`mkdir -p` whose new entries are durable (each created directory's parent is fsynced)."""
    if directory.is_dir():
        return
    make_dirs(directory.parent)
    try:
        directory.mkdir()
    except FileExistsError:
        return
    fsync_dir(directory.parent)


def write_segment(path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch], row_group_rows: int,
                  options: Mapping[str, Any]) -> None:
    """Write `batches` (streamed, row groups of `row_group_rows`; `options`: the `ParquetWriter`'s, the
    columns' layout) with page checksums, fsync and rename into place, then fsync the directory: durable
    before the manifest names it."""
    make_dirs(path.parent)
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema, write_page_checksum=True, **options) as writer:
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in batches:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= row_group_rows:
                full = pa.Table.from_batches(pending, schema)
                writer.write_table(full.slice(0, rows - rows % row_group_rows), row_group_size=row_group_rows)
                pending = full.slice(rows - rows % row_group_rows).to_batches()
                rows %= row_group_rows
        if rows:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=row_group_rows)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def verify_segment(path: Path, whole: bool) -> None:
    """Raise OSError or pyarrow's errors for a missing or truncated file (its footer is read), or with
    `whole`, for any corrupt page (every page is read and its checksum checked)."""
    if whole:                # a row group at a time, in this thread: 40 MB less RSS left after opening
        file = pq.ParquetFile(path, page_checksum_verification=True)
        for i in range(file.metadata.num_row_groups):
            file.read_row_group(i, use_threads=False)
    else:
        pq.read_metadata(path)


def new_segment_name() -> str:
    return f"{uuid.uuid4().hex}.parquet"


MANIFEST = "manifest.json"
PREVIOUS_MANIFEST = "manifest.prev.json"


def load_manifest(data_dir: Path, name: str = MANIFEST) -> JsonObject | None:
    path = data_dir / name
    return json.loads(path.read_text()) if path.exists() else None


@dataclass(frozen=True)
class Committed:
    """A committed state as the next checkpoint needs it, without holding the manifest (its bloom filters
    make it megabytes): its WAL generation, its segments, and where it is — a manifest file of the data
    directory, or (a new directory's empty state, on no disk) the manifest itself."""

    wal_gen: int
    paths: frozenset[Path]
    file: str | None = None
    manifest: JsonObject | None = None

    @classmethod
    def of(cls, data_dir: Path, manifest: JsonObject, file: str | None) -> Committed:
        return cls(int(manifest["wal_gen"]), frozenset(segment_paths(data_dir, manifest)), file,
                   None if file is not None else manifest)


def _replace(data_dir: Path, name: str, text: bytes) -> None:
    tmp = data_dir / (name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, data_dir / name)


def commit_manifest(data_dir: Path, manifest: JsonObject, previous: Committed | None) -> Committed:
    """Make `manifest` current, keeping `previous` (the state it replaces) as the fallback of recovery;
    returns the new committed state.

    `previous` is written first: a crash in between leaves both files naming a complete state."""
    if previous is None:
        (data_dir / PREVIOUS_MANIFEST).unlink(missing_ok=True)
    elif previous.file is None:
        _replace(data_dir, PREVIOUS_MANIFEST, json.dumps(previous.manifest).encode())
    elif previous.file != PREVIOUS_MANIFEST:
        _replace(data_dir, PREVIOUS_MANIFEST, (data_dir / previous.file).read_bytes())
    _replace(data_dir, MANIFEST, json.dumps(manifest).encode())
    fsync_dir(data_dir)
    return Committed.of(data_dir, manifest, MANIFEST)


def segment_paths(data_dir: Path, manifest: JsonObject) -> set[Path]:
    """Every Parquet file `manifest` names."""
    paths: set[Path] = set()
    for tenant, dbs in manifest["tenants"].items():
        for db, info in dbs.items():
            for table, tinfo in info["tables"].items():
                directory = data_dir / safe_name(tenant) / safe_name(db) / safe_name(table)
                paths.update(directory / file for file in tinfo["files"])
    return paths


def remove_wal_before(directory: Path, gen: int) -> None:
    for old in wal_generations(directory):
        if old < gen:
            wal_path(directory, old).unlink(missing_ok=True)


def unreferenced(data_dir: Path, referenced: set[Path]) -> set[Path]:
    """Parquet files (and leftovers of unfinished ones) the committed manifest does not name."""
    return {path for path in data_dir.glob("*/*/*/*")
            if path.suffix in (".parquet", ".tmp") and path not in referenced}


def remove_files(data_dir: Path, paths: set[Path]) -> None:
    """Delete `paths`, then the directories that left empty."""
    for path in paths:
        path.unlink(missing_ok=True)
    for depth in ("*/*/*", "*/*", "*"):
        for d in data_dir.glob(depth):
            if d.is_dir() and d.name != "wal" and not any(d.iterdir()):
                d.rmdir()
