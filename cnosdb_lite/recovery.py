"""Start-up state: the catalog and sealed chunks a manifest names, surviving lost or torn Parquet segments.

What a lost segment costs depends on whether the WAL that produced its rows is still there.  A checkpoint
keeps the manifest it replaced (`manifest.prev.json`), that manifest's Parquet files and the WAL from its
`wal_gen` on, until the next checkpoint (module `storage`).  So:
- a segment written by the last checkpoint (the ones a crash or a lying disk can tear) is rebuilt exactly:
  start from the previous manifest, whose files are intact, and replay the WAL from its generation;
- a segment that both manifests name (written two or more checkpoints ago, its WAL long deleted) cannot be
  rebuilt: its rows are lost, everything else (other segments, the WAL since the last checkpoint) is kept.
Either way start-up goes on, with one warning per unreadable file and one saying which case applied; an
unreadable file is renamed `<name>.corrupt` (kept for inspection, never read again) and the engine commits
a fresh checkpoint at once so that the directory is consistent again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import storage
from .catalog import DEFAULT_DATABASE, DEFAULT_TENANT, Database, DatabaseOptions
from .segments import Segment
from .table import Table

log = logging.getLogger("cnosdb_lite")
VERIFY_ROWS = 1 << 20      # a new segment up to this size is read whole at start-up (a flush's, not a merge's)

Tenants = dict[str, dict[str, Database]]


@dataclass
class Loaded:
    """What start-up continues from: replay the WAL from `manifest["wal_gen"]` onto `tenants`."""

    tenants: Tenants
    wal_gen: int
    committed: storage.Committed | None     # the state loaded, kept as previous by the next checkpoint
    damaged: list[Path] = field(default_factory=list)   # unreadable segments found (renamed .corrupt)


def empty_manifest() -> storage.JsonObject:
    """The state of a new data directory, as a manifest: replaying the whole WAL onto it rebuilds all."""
    options = Database(DEFAULT_DATABASE).options.to_json()
    return {"wal_gen": 0, "tenants": {DEFAULT_TENANT: {DEFAULT_DATABASE: {"options": options, "tables": {}}}}}


def load(data_dir: Path) -> Loaded:
    current = storage.load_manifest(data_dir)
    if current is None:
        manifest = empty_manifest()
        return Loaded(build(data_dir, manifest)[0], 0, storage.Committed.of(data_dir, manifest, None))
    previous = storage.load_manifest(data_dir, storage.PREVIOUS_MANIFEST)
    tenants, bad = build(data_dir, current, previous)
    if not bad:
        return Loaded(tenants, int(current["wal_gen"]), storage.Committed.of(data_dir, current, storage.MANIFEST))
    for path, error in bad.items():
        log.warning("event=segment_unreadable file=%s error=%r", path, error)
    if previous is not None and _wal_complete(data_dir / "wal", int(previous["wal_gen"]), int(current["wal_gen"])):
        base, bad_base = build(data_dir, previous)
        if not bad_base:
            log.warning("event=recovered data_dir=%s from=%s replay_from_wal_gen=%d rows_lost=0", data_dir,
                        storage.PREVIOUS_MANIFEST, previous["wal_gen"])
            _quarantine(bad)
            committed = storage.Committed.of(data_dir, previous, storage.PREVIOUS_MANIFEST)
            return Loaded(base, int(previous["wal_gen"]), committed, sorted(bad))
    log.warning("event=rows_lost data_dir=%s files=%s reason=%r", data_dir, ",".join(map(str, sorted(bad))),
                "the WAL that wrote these segments was deleted by an earlier checkpoint")
    _quarantine(bad)
    return Loaded(tenants, int(current["wal_gen"]), None, sorted(bad))


def build(data_dir: Path, manifest: storage.JsonObject, previous: storage.JsonObject | None = None
          ) -> tuple[Tenants, dict[Path, str]]:
    """The tenants `manifest` describes, and its segments that could not be read (path -> error).

    Start-up reads metadata, not rows: each segment's footer is checked, and only the segments `previous`
    does not name (those the last checkpoint wrote, which a crash or a lying disk can tear) of up to
    `VERIFY_ROWS` rows (a flush's; not a large merge's, which would make opening take seconds) are read
    whole, a row group at a time, with their page checksums verified."""
    tenants: Tenants = {}
    bad: dict[Path, str] = {}
    older = storage.segment_paths(data_dir, previous) if previous is not None else set()
    for tenant, dbs in manifest["tenants"].items():
        tenants[tenant] = {}
        for name, info in dbs.items():
            db = Database(name, DatabaseOptions.from_json(info["options"]))
            tenants[tenant][name] = db
            for tname, tinfo in info["tables"].items():
                table = Table(tname, db.time_unit, {c: k for c, k in tinfo["columns"] if c != "time"})
                table.writes = int(tinfo.get("writes", 0))
                directory = data_dir / storage.safe_name(tenant) / storage.safe_name(name) / storage.safe_name(tname)
                described = tinfo.get("segments") or [{"file": f} for f in tinfo["files"]]
                for entry in described:
                    path = directory / str(entry["file"])
                    try:
                        whole = path not in older and int(entry.get("rows", 0)) <= VERIFY_ROWS
                        storage.verify_segment(path, whole)
                        segment = Segment.from_json(directory, entry) if "rows" in entry else _describe(path)
                    except (OSError, ValueError, pa.ArrowException) as e:
                        bad[path] = f"{type(e).__name__}: {e}"
                        continue
                    table.segments.append(segment)
                db.tables[tname] = table
    return tenants, bad


def _describe(path: Path) -> Segment:
    """A segment named by a manifest of an older version (no row count or time range recorded)."""
    times = pq.read_table(path, columns=["time"]).column("time").cast(pa.int64())
    lo, hi = pc.min_max(times).values() if len(times) else (pa.scalar(0), pa.scalar(0))
    return Segment(path, len(times), lo.as_py() or 0, hi.as_py() or 0)


def _wal_complete(directory: Path, first: int, end: int) -> bool:
    """Every generation in [first, end) is still on disk (they hold what the later manifest sealed)."""
    present = set(storage.wal_generations(directory))
    return all(gen in present for gen in range(first, end))


def _quarantine(paths: dict[Path, str]) -> None:
    for path in paths:
        if path.exists():
            path.rename(path.with_name(path.name + ".corrupt"))
