"""cnosdb-lite benchmark: ingest, Jaeger-style lookups, bytes per span, RSS, reopen time.

Run `python -m bench.cnosdb_lite` (defaults: 1M and 10M spans over 14 days); `--sizes 200000 --batch 5000`
for a quick run.  Up to `--lp-max` spans are written as line protocol through `Engine.write_lines` (what
the ingest figure measures); beyond that the rest is generated as Arrow and written as segments directly
(`--direct`, as fast as the machine allows), then compacted.  Every query goes through `Engine.execute`.
Figures only, no asserts.  The peak RSS printed after the line-protocol ingest is that of the engine's
own write path (parsing, memtable, flushes and the merges running meanwhile); the writing process's final
peak also counts the direct generation.  Wall times are noisy on a shared machine: each query figure also gives the
process CPU time per operation.  `--lp-only` uses only the public API, so the same script measures an
older engine (`PYTHONPATH=<checkout of main> python -m bench.cnosdb_lite --lp-only`).

Lookups, as the storage plugin sends them:
- GetTrace: all spans of one trace ID;
- FindTraces: newest 20 traces of a service with a field condition (`http_status = '500'`), whole time
  range, and within one day;
- services / operations: SHOW TAG VALUES of `service`, and of `name` for one service; DESCRIBE TABLE.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cnosdb_lite import Engine

SPANS_PER_TRACE = 8
SERVICES = 20
BASE_TS = 1_700_000_000_000_000_000
DAY_NS = 86_400 * 10**9
DIRECT_CHUNK = 200_000


def span_lines(start: int, count: int, rnd: random.Random, step: int) -> tuple[str, list[str]]:
    """`count` span-like lines (5 tags + 25 fields), and the trace ids they use: traces of 8 spans across 8
    services (as real traces cross services), each span the child of the one before (the root has no
    parent), random 64-bit span IDs and durations."""
    out, traces = [], []
    tid, parent = "", ""
    for i in range(start, start + count):
        if i % SPANS_PER_TRACE == 0:
            tid = f"{rnd.getrandbits(128):032x}"
            traces.append(tid)
            parent = ""
        span = f"{rnd.getrandbits(64):016x}"
        svc = (i // SPANS_PER_TRACE + i % SPANS_PER_TRACE) % SERVICES     # a trace crosses 8 services
        ts = BASE_TS + i * step
        duration = rnd.randint(1, 10**7)
        out.append(
            f"spans,trace_id={tid},span_id={span}{f',parent_span_id={parent}' if parent else ''},"
            f"service=svc{svc},name=op{i % 40} kind=\"SPAN_KIND_SERVER\",duration_nano={duration}i,"
            f"end_time={ts + duration}.0,status_code=\"STATUS_CODE_OK\",status_message=\"\","
            f"scope_name=\"io.otel\",scope_version=\"1.2.3\",res_host=\"host-{i % 7}\",res_pid={i % 100}i,"
            f"res_os=\"linux\",res_region=\"eu-{i % 3}\",http_method=\"{('GET', 'POST')[i % 2]}\","
            f"http_url=\"http://example.com/api/items/{i % 1000}\",http_status=\"{(200, 404, 500)[i % 3]}\","
            f"user_id=\"user{i % 5000}\",db_stmt=\"SELECT * FROM t WHERE id = {i % 977}\","
            f"peer=\"10.0.0.{i % 255}\",retry_count={i % 3}i,cache_hit={('true', 'false')[i % 2]},"
            f"ratio={i % 100 / 100},event_name=\"log\",event_time={ts + 10}.0 {ts}")
        parent = span
    return "\n".join(out), traces


def _mod(i: pa.Array, k: int) -> pa.Array:
    return pc.subtract(i, pc.multiply(pc.divide(i, k), k))


def _cycle(values: list, i: pa.Array, k: int, type_: pa.DataType) -> pa.Array:
    return pc.take(pa.array(values, type_), _mod(i, k))


def _hex_ids(n: int, nbytes: int) -> pa.Array:
    text = os.urandom(n * nbytes).hex()
    w = 2 * nbytes
    return pa.array([text[j:j + w] for j in range(0, n * w, w)], pa.string())


def span_table(start: int, count: int, step: int) -> tuple[pa.Table, list[str]]:
    """The same spans as `span_lines`, built as Arrow columns (random IDs and durations differ)."""
    i = pa.array(range(start, start + count), pa.int64())
    first_trace = start // SPANS_PER_TRACE
    traces = _hex_ids((start + count - 1) // SPANS_PER_TRACE - first_trace + 1, 16)
    ts = pc.add(pc.multiply(i, step), BASE_TS)
    spans = _hex_ids(count, 8)
    first = pc.equal(_mod(i, SPANS_PER_TRACE), 0)             # a trace's first span is its root
    parents = pc.if_else(first, pa.nulls(count, pa.string()), pa.concat_arrays([pa.nulls(1, pa.string()), spans[:-1]]))
    duration = pa.array([random.randint(1, 10**7) for _ in range(count)], pa.int64())
    cols = {
        "time": ts.cast(pa.timestamp("ns")),
        "name": pc.take(pa.array([f"op{k}" for k in range(40)]), _mod(i, 40)),
        "parent_span_id": parents,
        "service": pc.take(pa.array([f"svc{k}" for k in range(SERVICES)]),
                           _mod(pc.add(pc.divide(i, SPANS_PER_TRACE), _mod(i, SPANS_PER_TRACE)), SERVICES)),
        "span_id": spans,
        "trace_id": pc.take(traces, pc.subtract(pc.divide(i, SPANS_PER_TRACE), first_trace)),
        "cache_hit": pc.equal(_mod(i, 2), 0),
        "db_stmt": _cycle([f"SELECT * FROM t WHERE id = {k}" for k in range(977)], i, 977, pa.string()),
        "duration_nano": duration,
        "end_time": pc.add(ts, duration).cast(pa.float64(), safe=False),
        "event_name": pa.repeat(pa.scalar("log"), count),
        "event_time": pc.add(ts, 10).cast(pa.float64(), safe=False),
        "http_method": _cycle(["GET", "POST"], i, 2, pa.string()),
        "http_status": _cycle(["200", "404", "500"], i, 3, pa.string()),
        "http_url": _cycle([f"http://example.com/api/items/{k}" for k in range(1000)], i, 1000, pa.string()),
        "kind": pa.repeat(pa.scalar("SPAN_KIND_SERVER"), count),
        "peer": _cycle([f"10.0.0.{k}" for k in range(255)], i, 255, pa.string()),
        "ratio": pc.divide(_mod(i, 100).cast(pa.float64()), 100.0),
        "res_host": _cycle([f"host-{k}" for k in range(7)], i, 7, pa.string()),
        "res_os": pa.repeat(pa.scalar("linux"), count),
        "res_pid": _mod(i, 100),
        "res_region": _cycle([f"eu-{k}" for k in range(3)], i, 3, pa.string()),
        "retry_count": _mod(i, 3),
        "scope_name": pa.repeat(pa.scalar("io.otel"), count),
        "scope_version": pa.repeat(pa.scalar("1.2.3"), count),
        "status_code": pa.repeat(pa.scalar("STATUS_CODE_OK"), count),
        "status_message": pa.repeat(pa.scalar(""), count),
        "user_id": _cycle([f"user{k}" for k in range(5000)], i, 5000, pa.string()),
    }
    return pa.table(cols), traces.to_pylist()


def write_direct(engine: Engine, start: int, count: int, step: int) -> list[str]:
    """Spans written as segments straight into the `spans` table (bench only: bypasses the WAL), then a
    checkpoint commits them; queries later read them through the normal path."""
    from cnosdb_lite.segments import write as write_segments
    from cnosdb_lite.table import conform
    table = engine.tenants["cnosdb"]["public"].tables["spans"]
    directory = engine.data_dir / "cnosdb" / "public" / "spans"
    traces: list[str] = []
    for at in range(start, start + count, DIRECT_CHUNK):
        rows, tids = span_table(at, min(DIRECT_CHUNK, start + count - at), step)
        traces += tids
        data = pa.Table.from_batches([conform(rows, table.schema)])
        with engine.lock:                   # files outside the manifest are cleaned up by a checkpoint
            table.segments.extend(write_segments(directory, data, table.tags(), 1))
            table.version += 1
            engine.checkpoint()
    return traces


class Meter:
    """Wall and CPU time of repeated calls; RSS from /proc."""

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    @staticmethod
    def peak_mb() -> float:
        """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

    @staticmethod
    def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
        """p50 and p99 wall ms, mean CPU ms per call."""
        samples = []
        cpu0 = time.process_time()
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1000)
        cpu = (time.process_time() - cpu0) * 1000 / repeat
        samples.sort()
        return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))], cpu


def _timestamp(ns: int) -> str:
    """As the plugin writes a time bound: a cast of an ISO-8601 string."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9))
    return f"CAST('{whole}.{ns % 10**9:09d}' AS TIMESTAMP)"


def queries(engine: Engine, traces: list[str], size: int, step: int, repeat: int, label: str) -> None:
    rnd = random.Random(7)
    run = engine.execute

    def show(name: str, fn: Callable[[], object], n: int = repeat) -> None:
        fn()                                                            # warm
        p50, p99, cpu = Meter.timed(fn, n)
        print(f"[{label}] {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, CPU {cpu:.1f} ms/op", flush=True)

    show("GetTrace (trace_id = x)", lambda: run(
        "cnosdb", "public", f"SELECT * FROM spans WHERE trace_id = '{traces[rnd.randrange(len(traces))]}'"))
    show("GetTrace (IN, ordered)", lambda: run(
        "cnosdb", "public", f"SELECT * FROM spans WHERE trace_id IN ('{traces[rnd.randrange(len(traces))]}') "
        "ORDER BY trace_id, time, span_id"))
    svc = iter([f"svc{i % SERVICES}" for i in range(10 * repeat)])
    find = ("SELECT trace_id, max(time) AS newest FROM spans WHERE service = '{}' AND http_status IS NOT NULL "
            "AND http_status = '500'{} GROUP BY trace_id ORDER BY newest DESC, trace_id LIMIT 20")
    show("FindTraces (service + tag, 20, all time)", lambda: run("cnosdb", "public", find.format(next(svc), "")),
         max(5, repeat // 5))
    last = BASE_TS + (size - 1) * step
    day = f" AND time >= {_timestamp(last - DAY_NS)} AND time <= {_timestamp(last)}"
    show("FindTraces (service + tag, 20, last day)", lambda: run("cnosdb", "public", find.format(next(svc), day)),
         max(5, repeat // 5))
    show("services (SHOW TAG VALUES)", lambda: run("cnosdb", "public", "SHOW TAG VALUES FROM spans WITH KEY = service"))
    show("operations (SHOW TAG VALUES ... WHERE service)", lambda: run(
        "cnosdb", "public", f"SHOW TAG VALUES FROM spans WITH KEY = name WHERE service = '{next(svc)}'"))
    show("DESCRIBE TABLE", lambda: run("cnosdb", "public", "DESCRIBE TABLE spans"))


def run(size: int, args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="cnosdb-lite-bench-"))
    rnd = random.Random(42)
    step = max(1, args.days * DAY_NS // size)
    label = f"{size:,} spans"
    engine = Engine(data_dir)
    traces: list[str] = []
    lp = size if args.lp_only else min(size, args.lp_max)
    ingest_s, cpu = 0.0, 0.0
    for start in range(0, lp, args.batch):
        text, tids = span_lines(start, min(args.batch, lp - start), rnd, step)
        traces += tids
        t, c = time.perf_counter(), time.process_time()
        engine.write_lines("cnosdb", "public", text)
        ingest_s += time.perf_counter() - t
        cpu += time.process_time() - c
    print(f"[{label}] ingest (line protocol, {lp:,} spans in requests of {args.batch}): {lp / ingest_s:,.0f} "
          f"spans/s wall, {lp / cpu:,.0f} spans per CPU-second; RSS {Meter.rss_mb():,.0f} MB, peak "
          f"{Meter.peak_mb():,.0f} MB (line protocol, flushes and merges)", flush=True)
    if size > lp:
        t = time.perf_counter()
        traces += write_direct(engine, lp, size - lp, step)
        print(f"[{label}] direct segments ({size - lp:,} spans): {time.perf_counter() - t:.0f} s; "
              f"RSS {Meter.rss_mb():,.0f} MB", flush=True)
    if hasattr(engine, "checkpoint"):
        engine.checkpoint()
    if hasattr(engine, "wait_for_compaction"):
        t, c = time.perf_counter(), time.process_time()
        engine.wait_for_compaction()
        files = len(engine.tenants["cnosdb"]["public"].tables["spans"].segments)
        print(f"[{label}] compaction: {time.perf_counter() - t:.0f} s wall, {time.process_time() - c:.0f} s CPU "
              f"(this thread's share only); {files} segments", flush=True)
    queries(engine, traces, size, step, args.repeat, label)
    files = sum(p.stat().st_size for p in (data_dir / "cnosdb").rglob("*.parquet"))
    table = engine.tenants["cnosdb"]["public"].tables["spans"] if hasattr(engine, "tenants") else None
    live = sum(s.path.stat().st_size for s in table.segments) if hasattr(table, "segments") else files
    print(f"[{label}] on disk: {live / size:.1f} B/span ({live / 1e6:.1f} MB of live segments; {files / 1e6:.1f} MB "
          f"of Parquet files with those the last checkpoint retired, kept until the next); "
          f"RSS {Meter.rss_mb():,.0f} MB, peak so far {Meter.peak_mb():,.0f} MB", flush=True)
    engine.close()
    del engine
    probes = data_dir.parent / (data_dir.name + ".traces")
    probes.write_text("\n".join(random.Random(3).sample(traces, min(len(traces), 10 * args.repeat))))
    # Reopened in a new process: its RSS is what the engine holds, not what this one's allocator kept.
    subprocess.run([sys.executable, "-m", "bench.cnosdb_lite", "--reopen", str(data_dir), "--sizes", str(size),
                    "--repeat", str(args.repeat), "--days", str(args.days)], check=True)
    probes.unlink()
    shutil.rmtree(data_dir, ignore_errors=True)


def reopen(data_dir: Path, size: int, args: argparse.Namespace) -> None:
    label = f"{size:,} spans, reopened in a new process"
    traces = (data_dir.parent / (data_dir.name + ".traces")).read_text().split()
    t, c = time.perf_counter(), time.process_time()
    engine = Engine(data_dir)
    print(f"[{label}] open: {time.perf_counter() - t:.2f} s wall, {time.process_time() - c:.2f} s CPU; idle RSS "
          f"{Meter.rss_mb():,.0f} MB", flush=True)
    queries(engine, traces, size, max(1, args.days * DAY_NS // size), args.repeat, label)
    print(f"[{label}] RSS after queries {Meter.rss_mb():,.0f} MB, peak {Meter.peak_mb():,.0f} MB", flush=True)
    engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--batch", type=int, default=1000, help="lines per write request")
    parser.add_argument("--repeat", type=int, default=50, help="query samples")
    parser.add_argument("--days", type=int, default=14, help="time range the spans cover")
    parser.add_argument("--lp-max", type=int, default=1_000_000, help="spans written as line protocol")
    parser.add_argument("--lp-only", action="store_true", help="no direct segments (any engine version)")
    parser.add_argument("--reopen", type=Path, help=argparse.SUPPRESS)      # the second half, in a new process
    args = parser.parse_args()
    if args.reopen:
        reopen(args.reopen, args.sizes[0], args)
        return
    for size in args.sizes:
        run(size, args)
    print(f"peak RSS of the writing process: {Meter.peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
