"""Unary Jaeger v1 WriteSpan benchmark: one span per call, acknowledged once stored.

The server and a separate cnosdb-lite run as subprocesses on loopback (as in bench.plugin), so the server's
CPU is read apart from /proc. Phases: ack latency at low load (1 call in flight), then `--in-flight` calls
(default 16) for `--seconds` (default 10): spans/s, ack latency p50/p99, server and cnosdb-lite CPU µs/span.
Figures only, no asserts.

Run: python -m bench.unary_write [--seconds 10] [--in-flight 16] [--server-arg=--max-writes-in-flight=4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from bench.plugin import HOUR_NS, SPANS_PER_REQUEST, Spans, _templates, cnosdb_lite, percentile, plugin_server
from cnosdb_jaeger_storage.model.jaeger_otlp import resource_spans_to_jaeger
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as v1

METHOD = "/jaeger.storage.v1.SpanWriterPlugin/WriteSpan"


def messages(run: int, count: int) -> list[bytes]:
    """`count` serialized WriteSpanRequests (whole 8-span traces, bench.plugin's synthetic spans)."""
    templates = _templates()
    groups = max(1, -(-count // (SPANS_PER_REQUEST * 8)))
    spans = Spans(run, groups, time.time_ns() - HOUR_NS, HOUR_NS // (groups * SPANS_PER_REQUEST))
    out = [v1.WriteSpanRequest(span=s).SerializeToString()
           for g in range(groups) for r in spans.requests(g, templates)
           for s in resource_spans_to_jaeger(r.resource_spans)]
    return out[:count]


async def drive(target: str, bodies: list[bytes], in_flight: int, seconds: float,
                channels: int) -> tuple[int, list[float], int]:
    """Sends `bodies` with `in_flight` calls outstanding until they run out or `seconds` pass."""
    chans = [grpc.aio.insecure_channel(target) for _ in range(max(1, min(channels, in_flight)))]
    calls = [c.unary_unary(METHOD, request_serializer=None, response_deserializer=v1.WriteSpanResponse.FromString)
             for c in chans]
    it = iter(bodies)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal errors
        call = calls[k % len(calls)]
        for body in it:
            if time.perf_counter() >= deadline:
                return
            t = time.perf_counter()
            try:
                await call(body, timeout=60)
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t)

    try:
        await asyncio.gather(*(worker(k) for k in range(in_flight)))
    finally:
        for c in chans:
            await c.close()
    return len(latencies), latencies, errors


def phase(label: str, plugin, lite, target: str, bodies: list[bytes], in_flight: int, seconds: float,
          channels: int) -> None:
    cpu_server, cpu_lite = plugin.proc.cpu(), lite.cpu()
    started = time.perf_counter()
    done, latencies, errors = asyncio.run(drive(target, bodies, in_flight, seconds, channels))
    elapsed = time.perf_counter() - started
    server_cpu, lite_cpu = plugin.proc.cpu() - cpu_server, lite.cpu() - cpu_lite
    ms = [x * 1000 for x in latencies] or [float("nan")]
    print(f"{label:18s} {done:>7,} spans in {elapsed:5.1f} s = {done / elapsed:>8,.0f} spans/s   ack p50 "
          f"{statistics.median(ms):7.1f} ms  p99 {percentile(ms, 0.99):7.1f} ms   server "
          f"{server_cpu / max(done, 1) * 1e6:6.0f} CPU µs/span  cnosdb-lite {lite_cpu / max(done, 1) * 1e6:6.0f} "
          f"µs/span  errors {errors}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="duration of the loaded phase")
    parser.add_argument("--low-seconds", type=float, default=3, help="duration of the 1-in-flight phase")
    parser.add_argument("--in-flight", type=int, default=16, help="calls outstanding in the loaded phase")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels the calls are spread over")
    parser.add_argument("--spans", type=int, default=150_000, help="spans generated (upper bound of a phase)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra server flag (repeatable)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-unary-"))
    print(f"bench.unary_write: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"server flags {args.server_arg or '(defaults)'}", flush=True)
    run = random.getrandbits(31) << 8
    t = time.perf_counter()
    bodies = messages(run, args.spans)
    print(f"(generated {len(bodies):,} WriteSpanRequests in {time.perf_counter() - t:.1f} s)", flush=True)
    try:
        with cnosdb_lite(work / "data", work) as (lite, lite_url), \
                plugin_server(lite_url, work, None, "unary", args.server_arg) as plugin:
            target = plugin.grpc_target
            asyncio.run(drive(target, bodies[:200], 4, 30, 1))  # creates the table, warms every path
            rest = bodies[200:]
            low = rest[: len(rest) // 10]
            phase("1 in flight", plugin, lite, target, low, 1, args.low_seconds, 1)
            phase(f"{args.in_flight} in flight", plugin, lite, target, rest[len(low):], args.in_flight,
                  args.seconds, args.channels)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
