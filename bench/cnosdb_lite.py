"""cnosdb-lite benchmark: line-protocol ingest, trace-ID lookup, group-by/top-20, bytes per row, peak RSS.

Run `python -m bench.cnosdb_lite` (defaults: 1M and 5M rows); `--sizes 200000 --batch 5000` for a quick
run.  Figures only, no asserts: compare with docs' targets (≥100 k rows/s per core ingest, lookup ≤20 ms,
group-by ≤30 ms at 5 M rows, ≤60 B/row on disk).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from cnosdb_lite import Engine

SPANS_PER_TRACE = 8
BASE_TS = 1_700_000_000_000_000_000


def span_lines(start: int, count: int, rnd: random.Random) -> tuple[str, list[str]]:
    """`count` span-like lines (5 tags + 25 fields), and the trace ids they use."""
    out, traces = [], []
    tid = ""
    for i in range(start, start + count):
        if i % SPANS_PER_TRACE == 0:
            tid = f"{rnd.getrandbits(128):032x}"
            traces.append(tid)
        svc = i // SPANS_PER_TRACE % 20
        out.append(
            f"spans,trace_id={tid},span_id={rnd.getrandbits(64):016x},parent_span_id={rnd.getrandbits(64):016x},"
            f"service=svc{svc},name=op{i % 40} kind=\"SPAN_KIND_SERVER\",duration_nano={rnd.randint(1, 10**7)}i,"
            f"end_time={BASE_TS + i * 1000 + 5000}.0,status_code=\"STATUS_CODE_OK\",status_message=\"\","
            f"scope_name=\"io.otel\",scope_version=\"1.2.3\",res_host=\"host-{i % 7}\",res_pid={i % 100}i,"
            f"res_os=\"linux\",res_region=\"eu-{i % 3}\",http_method=\"{('GET', 'POST')[i % 2]}\","
            f"http_url=\"http://example.com/api/items/{i % 1000}\",http_status=\"{(200, 404, 500)[i % 3]}\","
            f"user_id=\"user{i % 5000}\",db_stmt=\"SELECT * FROM t WHERE id = {i % 977}\","
            f"peer=\"10.0.0.{i % 255}\",retry_count={i % 3}i,cache_hit={('true', 'false')[i % 2]},"
            f"ratio={i % 100 / 100},event_name=\"log\",event_time={BASE_TS + i * 1000 + 10}.0 "
            f"{BASE_TS + i * 1000}")
    return "\n".join(out), traces


def timed(fn, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def run(size: int, batch: int, repeat: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="cnosdb-lite-bench-"))
    rnd = random.Random(42)
    engine = Engine(data_dir)
    traces: list[str] = []
    ingest_s = 0.0
    cpu0 = time.process_time()
    for start in range(0, size, batch):
        text, tids = span_lines(start, min(batch, size - start), rnd)
        traces += tids
        t = time.perf_counter()
        engine.write_lines("cnosdb", "public", text)
        ingest_s += time.perf_counter() - t
    cpu = time.process_time() - cpu0
    print(f"[{size:,} rows] ingest: {size / ingest_s:,.0f} rows/s wall ({size / cpu:,.0f} rows/s per CPU-second"
          f" incl. generation), batch {batch} lines")
    engine.checkpoint()
    engine.execute("cnosdb", "public", "SELECT count(*) FROM spans")
    probe = [traces[rnd.randrange(len(traces))] for _ in range(repeat)]
    it = iter(probe * 2)
    p50, p99 = timed(lambda: engine.execute(
        "cnosdb", "public", f"SELECT * FROM spans WHERE trace_id = '{next(it)}'"), repeat)
    print(f"[{size:,} rows] trace-ID lookup: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    svc = iter([f"svc{i % 20}" for i in range(repeat * 2)])
    p50, p99 = timed(lambda: engine.execute(
        "cnosdb", "public", f"SELECT trace_id, max(time) FROM spans WHERE service = '{next(svc)}' AND "
        "http_status = '500' GROUP BY trace_id ORDER BY 2 DESC LIMIT 20"), repeat)
    print(f"[{size:,} rows] group-by top-20: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    disk = sum(p.stat().st_size for p in (data_dir / "cnosdb").rglob("*.parquet"))
    print(f"[{size:,} rows] on disk: {disk / size:.1f} B/row ({disk / 1e6:.1f} MB Parquet)")
    t = time.perf_counter()
    engine.close()
    reopened = Engine(data_dir)
    print(f"[{size:,} rows] close + reopen: {time.perf_counter() - t:.1f} s")
    reopened.close()
    shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--batch", type=int, default=1000, help="lines per write request")
    parser.add_argument("--repeat", type=int, default=50, help="query samples")
    args = parser.parse_args()
    for size in args.sizes:
        run(size, args.batch, args.repeat)
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
