"""Two span-table layouts side by side on a running CnosDB: figures only, no asserts.

- `native`: CnosDB's own trace layout, as this server writes it: trace and span IDs are tags, so every span is a
  series of its own.
- `compact`: only low-cardinality tags (service, span name, the trace ID's first two hex digits as a bucket);
  trace and span IDs are fields. A trace lookup names its bucket (a tag, on the index) and its ID (a field).

Both tables get the same spans (8 per trace, 20 services of 4 operations, an attribute `http.status_code` that
is 500 on one span in 13, starts spread over the last 23 h), written in requests of 8,192 lines; then each
query is timed. CnosDB's RSS is read from /proc if `--cnosdb-pid` is given.

Run: python -m bench.cnosdb_layouts --cnosdb-url http://127.0.0.1:8902 --spans 1000000 [--layouts compact]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HOUR_NS = 3600 * 10**9
SERVICES, OPERATIONS, SPANS_PER_TRACE, LINES_PER_REQUEST = 20, 4, 8, 8192


class CnosDB:
    def __init__(self, url: str, database: str) -> None:
        self.url, self.database = url.rstrip("/"), database

    def post(self, path: str, body: str, **params: str) -> bytes:
        query = "&".join(f"{k}={v}" for k, v in {"db": self.database, **params}.items())
        request = urllib.request.Request(f"{self.url}{path}?{query}", data=body.encode(), headers={
            "Authorization": "Basic cm9vdDo=", "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=1800) as response:
            return response.read()

    def sql(self, statement: str) -> list[dict]:
        body = self.post("/api/v1/sql", statement)
        return json.loads(body) if body.strip() else []


def spans(count: int, seed: int = 7) -> Iterator[tuple[str, str, str, str, int, int, str]]:
    """(service, name, trace_id, span_id, start, duration, status_code) per span."""
    rnd = random.Random(seed)
    now = time.time_ns()
    for t in range(count // SPANS_PER_TRACE):
        trace_id = f"{rnd.getrandbits(128):032x}"
        start = now - rnd.randrange(23 * HOUR_NS)
        for s in range(SPANS_PER_TRACE):
            service = f"service-{(t + s) % SERVICES}"
            yield (service, f"op-{s % OPERATIONS}", trace_id, f"{rnd.getrandbits(64):016x}", start + s * 1000,
                   rnd.randrange(10**6), "500" if rnd.randrange(13) == 0 else "200")


def line(layout: str, span: tuple[str, str, str, str, int, int, str]) -> str:
    service, name, trace_id, span_id, start, duration, status = span
    fields = f'duration={duration},status="{status}"'
    if layout == "native":
        return f"native,service={service},trace_id={trace_id},span_id={span_id},name={name} {fields} {start}"
    return (f'compact,service={service},name={name},trace_bucket={trace_id[:2]} trace_id="{trace_id}",'
            f'span_id="{span_id}",{fields} {start}')


def timed(label: str, samples: int, call: Callable[[int], object]) -> None:
    times, result = [], None
    for i in range(samples):
        started = time.perf_counter()
        result = call(i)
        times.append((time.perf_counter() - started) * 1000)
    print(f"  {label:44s} p50 {statistics.median(times):9.1f} ms  max {max(times):9.1f} ms  (n={samples})  "
          f"{result}", flush=True)


def rss_mb(pid: int | None) -> str:
    if pid is None:
        return "n/a"
    for entry in Path(f"/proc/{pid}/status").read_text().splitlines():
        if entry.startswith("VmRSS:"):
            return f"{int(entry.split()[1]) / 1024:,.0f} MB"
    return "n/a"


def run(db: CnosDB, layout: str, count: int, pid: int | None, samples: int) -> None:
    print(f"== {layout}: {count:,} spans", flush=True)
    started, batch = time.perf_counter(), []
    for span in spans(count):
        batch.append(line(layout, span))
        if len(batch) == LINES_PER_REQUEST:
            db.post("/api/v1/write", "\n".join(batch), precision="ns")
            batch = []
    if batch:
        db.post("/api/v1/write", "\n".join(batch), precision="ns")
    elapsed = time.perf_counter() - started
    print(f"  written in {elapsed:.1f} s ({count / elapsed:,.0f} spans/s); CnosDB RSS {rss_mb(pid)}", flush=True)
    probe = [s for i, s in enumerate(spans(count)) if i % (count // samples or 1) == 0][:samples]
    timed("services: SHOW TAG VALUES", samples,
          lambda _: len(db.sql(f'SHOW TAG VALUES FROM {layout} WITH KEY = "service"')))
    timed("operations of a service: SHOW TAG VALUES", samples, lambda i: len(db.sql(
        f"SHOW TAG VALUES FROM {layout} WITH KEY = \"name\" WHERE service = 'service-{i % SERVICES}'")))
    if layout == "native":
        by_id = "trace_id = '{t}'"
    else:
        by_id = "trace_bucket = '{b}' AND (trace_id IS NOT NULL AND trace_id = '{t}')"
    timed("one trace by ID", samples, lambda i: len(db.sql(
        f"SELECT * FROM {layout} WHERE " + by_id.format(t=probe[i][2], b=probe[i][2][:2]))))
    timed("trace search: service + status=500, top 20", max(3, samples // 4), lambda i: len(db.sql(
        f"SELECT trace_id, max(time) AS newest FROM {layout} WHERE service = 'service-{i % SERVICES}' AND "
        f"(status IS NOT NULL AND status = '500') GROUP BY trace_id ORDER BY newest DESC LIMIT 20")))
    print(f"  CnosDB RSS after the queries {rss_mb(pid)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnosdb-url", required=True)
    parser.add_argument("--cnosdb-pid", type=int, help="CnosDB's local PID, to report its RSS")
    parser.add_argument("--database", default=f"layouts_{int(time.time())}")
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--layouts", default="native,compact")
    args = parser.parse_args()
    db = CnosDB(args.cnosdb_url, args.database)
    CnosDB(args.cnosdb_url, "public").sql(f"CREATE DATABASE IF NOT EXISTS {args.database} WITH TTL '30d'")
    for layout in args.layouts.split(","):
        run(db, layout.strip(), args.spans, args.cnosdb_pid, args.samples)


if __name__ == "__main__":
    main()
