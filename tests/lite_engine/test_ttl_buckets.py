"""TTL as CnosDB enforces it: per vnode bucket, not per point (facts: cnosdb-measured.md section 5).

A point older than the TTL is refused only when its bucket does not exist yet; expiry drops whole buckets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnosdb_lite import CnosDBError, Engine
from cnosdb_lite.catalog import I64_MAX, I64_MIN, YEAR_NS, bucket_range

from .fake_clock import NOW, Clock

HOUR = 3600 * 10**9
DAY = 24 * HOUR
YEAR_START = NOW // YEAR_NS * YEAR_NS     # 2023-01-01T06:00Z: 1-year buckets count from the epoch
DAY_START = NOW // DAY * DAY              # 2023-11-14T00:00Z
EXPIRED = (422, "030034", "Operation not support: create expired bucket")


def q(e: Engine, sql: str, db: str) -> list[dict]:
    return e.execute("cnosdb", db, sql).to_pylist()


def ages(e: Engine, db: str) -> list[float]:
    """The stored points' ages in days (relative to NOW), oldest first."""
    rows = q(e, "SELECT CAST(time AS BIGINT) AS t FROM m ORDER BY time", db)
    return [(NOW - r["t"]) / DAY for r in rows]


def refused(e: Engine, db: str, lines: str) -> tuple[int, str, str]:
    with pytest.raises(CnosDBError) as info:
        e.write_lines("cnosdb", db, lines)
    return info.value.status, info.value.code, info.value.message


def test_bucket_ranges_follow_get_time_range() -> None:
    assert bucket_range(NOW, YEAR_NS) == (YEAR_START, YEAR_START + YEAR_NS)
    assert YEAR_START == 1_672_552_800 * 10**9
    assert bucket_range(5, 10) == (0, 10)
    assert bucket_range(10, 10) == (10, 20)
    assert bucket_range(-1, 10) == (-10, 0)
    assert bucket_range(-10, 10) == (-10, 0)
    assert bucket_range(-11, 10) == (-20, -10)
    assert bucket_range(123, 0) == (I64_MIN, I64_MAX)
    assert bucket_range(I64_MAX - 1, I64_MAX) == (0, I64_MAX)
    assert bucket_range(-5, I64_MAX) == (-I64_MAX, 0)


def test_measured_case_old_points_in_the_current_bucket_are_accepted(engine: Engine) -> None:
    # Facts 5: TTL 7d, 1-year buckets; a batch of a current point plus an 8-day-old one, then single points
    # 8 and 300 days old: all accepted and returned by SELECT.
    engine.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '7d'")
    assert q(engine, "DESCRIBE DATABASE d", "public")[0]["vnode_duration"] == "1year"
    engine.write_lines("cnosdb", "d", f"m,t=now f=1 {NOW}\nm,t=old8 f=1 {NOW - 8 * DAY}")
    engine.write_lines("cnosdb", "d", f"m,t=single8 f=1 {NOW - 8 * DAY - 1}")
    engine.write_lines("cnosdb", "d", f"m,t=single300 f=1 {NOW - 300 * DAY}")
    assert NOW - 300 * DAY >= YEAR_START
    assert q(engine, "SELECT t FROM m ORDER BY time", "d") == [
        {"t": "single300"}, {"t": "single8"}, {"t": "old8"}, {"t": "now"}]


def test_an_expired_point_whose_bucket_does_not_exist_is_refused(engine: Engine) -> None:
    engine.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '7d'")
    engine.write_lines("cnosdb", "d", f"m,t=now f=1 {NOW}")
    # The previous 1-year bucket was never created: its points are refused, the whole request with them.
    assert refused(engine, "d", f"m,t=x f=1 {NOW}\nm,t=y f=1 {YEAR_START - 1}") == EXPIRED
    assert refused(engine, "d", f"m,t=z f=1 {NOW - 2 * 365 * DAY}") == EXPIRED
    assert q(engine, "SELECT t FROM m", "d") == [{"t": "now"}]


def test_points_are_routed_in_request_order(engine: Engine) -> None:
    # A bucket is created by the first point that needs it (coordinator write_lines routes line by line):
    # an expired point before the current one meets no bucket and fails the request.
    engine.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '7d'")
    assert refused(engine, "d", f"m,t=old8 f=1 {NOW - 8 * DAY}\nm,t=now f=1 {NOW}") == EXPIRED
    assert refused(engine, "d", f"m,t=old8 f=1 {NOW - 8 * DAY}") == EXPIRED
    # Other tables and shapes in between do not change the order.
    engine.write_lines("cnosdb", "d", f'n,a=1 s="x" {NOW}\nm,t=old8 f=1 {NOW - 8 * DAY}\nm g=2i {NOW}')
    assert ages(engine, "d") == [8.0, 0.0]


def test_buckets_created_before_a_refused_point_stay(engine: Engine) -> None:
    engine.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '1h' VNODE_DURATION '1d'")
    assert refused(engine, "d", f"m,t=a f=1 {NOW}\nm,t=b f=1 {NOW - 10 * DAY}") == EXPIRED
    assert q(engine, "SHOW TABLES", "d") == []          # nothing written ...
    engine.write_lines("cnosdb", "d", f"m,t=c f=1 {NOW - 2 * HOUR}")   # ... but today's bucket exists
    assert refused(engine, "d", f"m,t=d f=1 {DAY_START - 1}") == EXPIRED
    assert ages(engine, "d") == [2 / 24]


def test_infinite_ttl_still_refuses_points_before_now_minus_i64_max(engine: Engine) -> None:
    # time_to_expired = now - i64::MAX for an INF TTL: about the year 1732 in a nanosecond database.
    engine.write_lines("cnosdb", "public", "m f=1 -5000000000000000000")
    assert refused(engine, "public", "m f=1 -8000000000000000000") == EXPIRED


def test_expiry_drops_whole_buckets(tmp_path: Path, clock: Clock) -> None:
    e = Engine(tmp_path, now_ns=clock)
    e.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '2d' VNODE_DURATION '1d'")
    yesterday = DAY_START - 12 * HOUR
    e.write_lines("cnosdb", "d", f"m,t=now f=1 {NOW}\nm,t=yesterday f=1 {yesterday}")
    clock.now = DAY_START + 2 * DAY - 1    # `yesterday` is 2.5 days old, its bucket ends 2d - 1ns ago
    e.execute("cnosdb", "public", "ALTER DATABASE d SET TTL '2d'")   # runs expiry now
    assert q(e, "SELECT t FROM m ORDER BY time", "d") == [{"t": "yesterday"}, {"t": "now"}]
    e.write_lines("cnosdb", "d", f"m,t=yesterday2 f=1 {yesterday + 1}")     # its bucket still exists
    clock.now = DAY_START + 2 * DAY + 1    # now the bucket's end is older than the TTL: it goes
    e.execute("cnosdb", "public", "ALTER DATABASE d SET TTL '2d'")
    assert q(e, "SELECT t FROM m ORDER BY time", "d") == [{"t": "now"}]
    assert refused(e, "d", f"m,t=again f=1 {yesterday}") == EXPIRED   # and it is not created again
    e.close()
    clock.now += DAY                       # today's bucket expires too, at the next start
    e = Engine(tmp_path, now_ns=clock)
    assert q(e, "SELECT count(*) AS n FROM m", "d") == [{"n": 0}]
    e.close()


def test_expiry_is_periodic_on_writes(engine: Engine, clock: Clock) -> None:
    engine.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '1d' VNODE_DURATION '1d'")
    engine.write_lines("cnosdb", "d", f"m,t=a f=1 {NOW}")
    clock.now = DAY_START + 2 * DAY + HOUR
    engine.write_lines("cnosdb", "d", f"m,t=b f=1 {clock.now}")
    assert q(engine, "SELECT t FROM m", "d") == [{"t": "b"}]


def test_buckets_survive_restart_and_wal_replay(tmp_path: Path, clock: Clock) -> None:
    e = Engine(tmp_path, now_ns=clock)
    e.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '7d'")
    e.write_lines("cnosdb", "d", f"m,t=now f=1 {NOW}")
    # Reopen without a checkpoint: the bucket comes back from the WAL's replay.
    replayed = Engine(tmp_path, now_ns=clock)
    replayed.write_lines("cnosdb", "d", f"m,t=old f=1 {NOW - 300 * DAY}")
    assert refused(replayed, "d", f"m,t=x f=1 {YEAR_START - 1}") == EXPIRED
    replayed.close()
    e.wal.close()
    # Reopen from the manifest.
    e = Engine(tmp_path, now_ns=clock)
    e.write_lines("cnosdb", "d", f"m,t=old2 f=1 {NOW - 301 * DAY}")
    assert ages(e, "d") == [301.0, 300.0, 0.0]
    e.close()


def test_manifest_without_buckets_derives_them_from_the_rows(tmp_path: Path, clock: Clock) -> None:
    e = Engine(tmp_path, now_ns=clock)
    e.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '7d'")
    e.write_lines("cnosdb", "d", f"m,t=now f=1 {NOW}")
    e.close()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["tenants"]["cnosdb"]["d"]["options"]["buckets"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    e = Engine(tmp_path, now_ns=clock)
    e.write_lines("cnosdb", "d", f"m,t=old f=1 {NOW - 300 * DAY}")
    assert refused(e, "d", f"m,t=x f=1 {YEAR_START - 1}") == EXPIRED
    e.close()


def test_buckets_use_the_database_precision(engine: Engine) -> None:
    engine.execute("cnosdb", "public", "CREATE DATABASE d WITH TTL '7d' PRECISION 'ms'")
    engine.write_lines("cnosdb", "d", f"m,t=now f=1 {NOW // 10**6}", precision="ms")
    engine.write_lines("cnosdb", "d", f"m,t=old f=1 {(YEAR_START + 1) // 10**6}", precision="ms")
    assert refused(engine, "d", f"m,t=x f=1 {YEAR_START // 10**6 - 1}") == EXPIRED


def test_a_point_at_the_last_nanosecond_is_refused_not_looped_on(engine: Engine) -> None:
    """A bucket's end saturates at i64::MAX, so no bucket holds that instant."""
    engine.execute("cnosdb", "public", "CREATE DATABASE d")
    assert refused(engine, "d", f"m,t=a f=1 {I64_MAX}")[:2] == (422, "050014")
