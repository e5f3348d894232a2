"""End-to-end benchmark of the plugin server: ingest rate, server CPU per span, query latency, disk, RSS.

Ingest through OTLP/HTTP, OTLP/gRPC Export and Jaeger v1 WriteSpanStream; then query latency over N
stored spans, bytes per span on disk and peak RSS. Prints figures only, no asserts.

The server (`cnosdb-jaeger-storage`) and the database (`cnosdb-lite`) run as two subprocesses on loopback,
so that the CPU each spends is read apart from /proc/<pid>/stat (utime + stime) and the load generator's
own CPU is not counted. Spans are bench/_synthetic.py's synthetic span: 10 attributes of mixed
types, one event with two attributes, a status, a resource with service.name (20 services) and 4 more
attributes, 512 spans per request, 8 spans per trace (a parent chain; the 8 levels of a trace come from
8 requests of different services, so that GetDependencies has edges to count).

Run: python -m bench.plugin [--spans N] [--stored N] [--sections ingest,query] [--profile-server DIR]
Quick: python -m bench.plugin --spans 50000 --stored 200000
Side by side with Jaeger remote-storage (memory) and no-op ceilings: python -m bench.plugin --compare-jaeger
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import aiohttp
import grpc
from google.protobuf import timestamp_pb2

from bench._synthetic import SPANS_PER_REQUEST, fill_span, resource_attributes
from cnosdb_jaeger_storage.cnosdb import sql as query_builder
from cnosdb_jaeger_storage.cnosdb.line_protocol import encode_resource_spans
from cnosdb_jaeger_storage.cnosdb.operations_table import OperationsIndex
from cnosdb_jaeger_storage.model.jaeger_otlp import resource_spans_to_jaeger
from cnosdb_jaeger_storage.model.trace_query import TraceQuery
from cnosdb_jaeger_storage.proto import (
    dependency_storage_grpc,
    dependency_storage_pb2,
    storage_v1_grpc,
    trace_pb2,
    trace_service_pb2,
    trace_storage_grpc,
    trace_storage_pb2,
)
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as v1

SPANS_PER_TRACE = 8
SPANS_PER_GROUP = SPANS_PER_REQUEST * SPANS_PER_TRACE  # 8 requests holding 512 whole traces
SERVICES = 20
TENANT, DATABASE, TABLE = "cnosdb", "jaeger", "jaeger_spans"
HOUR_NS = 3600 * 10**9
TAG_KEY, TAG_VALUE = "http.status_code", 500  # on 1 span in 13
CLK_TCK = os.sysconf("SC_CLK_TCK")
BIN = Path(sys.executable).parent


# ---- synthetic spans ---------------------------------------------------------------------------------

def _template(level: int) -> trace_service_pb2.ExportTraceServiceRequest:
    """The parts of a request that do not change between groups: level `level` of 512 traces."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(resource_attributes("?", level))
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.flask"
    ss.scope.version = "0.45b0"
    for i in range(SPANS_PER_REQUEST):
        span = ss.spans.add()
        span.name = f"GET /api/v1/resource/{(i + level) % 40}"
        span.kind = trace_pb2.Span.SPAN_KIND_SERVER if level == 0 else trace_pb2.Span.SPAN_KIND_INTERNAL
        fill_span(span, i, "?")
    return request


@dataclass(frozen=True)
class Spans:
    """`groups` groups of 8 requests; trace t starts at start_ns + t * step_ns. IDs carry `run` so that
    separate runs into one table never collide."""

    run: int
    groups: int
    start_ns: int
    step_ns: int

    @property
    def traces(self) -> int:
        return self.groups * SPANS_PER_REQUEST

    @property
    def count(self) -> int:
        return self.groups * SPANS_PER_GROUP

    def trace_id(self, t: int) -> bytes:
        return self.run.to_bytes(8, "big") + t.to_bytes(8, "big")

    def service(self, group: int, level: int) -> str:
        return f"service-{(group * 3 + level) % SERVICES}"

    def requests(self, group: int, templates: list) -> Iterator[trace_service_pb2.ExportTraceServiceRequest]:
        run_high = (self.run & 0xFFFFFFFF) << 32
        for level in range(SPANS_PER_TRACE):
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.CopyFrom(templates[level])
            rs = request.resource_spans[0]
            rs.resource.attributes[0].value.string_value = self.service(group, level)
            for i, span in enumerate(rs.scope_spans[0].spans):
                t = group * SPANS_PER_REQUEST + i
                span.trace_id = self.trace_id(t)
                span.span_id = (run_high | (t * SPANS_PER_TRACE + level + 1)).to_bytes(8, "big")
                if level:
                    span.parent_span_id = (run_high | (t * SPANS_PER_TRACE + level)).to_bytes(8, "big")
                start = self.start_ns + t * self.step_ns + level * 1_000_000
                span.start_time_unix_nano = start
                span.end_time_unix_nano = start + 250_000 + i * 977
                span.events[0].time_unix_nano = start + 1000
                span.attributes[5].value.string_value = f"user-{(t * 31 + level) % 5000}"
            yield request


def _templates() -> list[trace_service_pb2.ExportTraceServiceRequest]:
    return [_template(level) for level in range(SPANS_PER_TRACE)]


def _line_protocol_group(spans: Spans, group: int) -> bytes:
    """Runs in a worker process: one group's spans as line protocol, through the plugin's own encoder, with
    the operations-table lines the server would add."""
    global _TEMPLATES
    if _TEMPLATES is None:
        _TEMPLATES = _templates()
    lines: list[str] = []
    operations = OperationsIndex(TABLE)
    for request in spans.requests(group, _TEMPLATES):
        lines += encode_resource_spans(TABLE, request.resource_spans)
        new, points = operations.lines(request.resource_spans)
        lines += new
        operations.remember(points)
    return "\n".join(lines).encode()


_TEMPLATES: list | None = None


# ---- processes ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{name}: nothing listens on {port}")


class ProcStats:
    """CPU and memory of a process on this machine; NaN for one we cannot see (pid None)."""

    def __init__(self, pid: int | None) -> None:
        self._pid = pid

    @property
    def pid(self) -> int | None:
        return self._pid

    def cpu(self) -> float:
        """User + system CPU seconds of every thread of the process so far."""
        if self.pid is None:
            return float("nan")
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_mb(self, key: str) -> float:
        if self.pid is None:
            return float("nan")
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")


class Proc(ProcStats):
    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        super().__init__(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def start_sampler(py_spy_dir: str | None, name: str, pid: int) -> subprocess.Popen | None:
    """py-spy (on PATH) sampling `pid`: far less overhead than cProfile; collapsed stacks of busy threads."""
    if not py_spy_dir:
        return None
    Path(py_spy_dir).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([shutil.which("py-spy") or "py-spy", "record", "--format", "raw", "--rate", "250",
                             "--nonblocking", "-o", str(Path(py_spy_dir) / name), "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_sampler(sampler: subprocess.Popen | None) -> None:
    if sampler is not None:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(60)


@contextlib.contextmanager
def cnosdb_lite(data_dir: Path, work: Path, py_spy_dir: str | None = None) -> Iterator[tuple[Proc, str]]:
    port = free_port()
    proc = Proc("cnosdb-lite", [str(BIN / "cnosdb-lite"), "--data-dir", str(data_dir),
                                "--http-addr", f"127.0.0.1:{port}"], work / "cnosdb-lite.log")
    sampler = None
    try:
        wait_for_port(port, proc.process, "cnosdb-lite")
        sampler = start_sampler(py_spy_dir, f"cnosdb-lite-{data_dir.name}.txt", proc.pid)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        stop_sampler(sampler)
        proc.stop()


@contextlib.contextmanager
def database(args: argparse.Namespace, data_dir: Path, work: Path) -> Iterator[tuple[ProcStats, str]]:
    """The CnosDB of `--cnosdb-url` (its CPU and RSS read if `--cnosdb-pid` is given), else a cnosdb-lite."""
    if args.cnosdb_url:
        yield ProcStats(args.cnosdb_pid), args.cnosdb_url
    else:
        with cnosdb_lite(data_dir, work, args.py_spy) as found:
            yield found


@dataclass
class Plugin:
    proc: Proc
    grpc_target: str
    http_url: str
    admin_url: str

    def spans_written(self) -> int:
        """The server's own count of spans acknowledged as stored (its /metrics)."""
        with urllib.request.urlopen(self.admin_url + "/metrics", timeout=30) as response:
            text = response.read().decode()
        found = re.search(r"^cnosdb_jaeger_spans_written_total (\S+)$", text, re.MULTILINE)
        return int(float(found.group(1))) if found else 0


@contextlib.contextmanager
def plugin_server(cnosdb_url: str, work: Path, profile_dir: str | None, tag: str, extra: list[str],
                  py_spy_dir: str | None = None) -> Iterator[Plugin]:
    grpc_port, http_port, admin_port = free_port(), free_port(), free_port()
    flags = ["--grpc-addr", f"127.0.0.1:{grpc_port}", "--otlp-grpc-addr=", "--otlp-http-addr",
             f"127.0.0.1:{http_port}", "--admin-addr", f"127.0.0.1:{admin_port}", "--cnosdb-url", cnosdb_url,
             "--database", DATABASE, "--data-dir", str(work / "unused"), "--ttl", "30d", *extra]
    if profile_dir:
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "cProfile", "-o", str(Path(profile_dir) / f"server-{tag}.prof"),
                   "-m", "cnosdb_jaeger_storage.cli", *flags]
    else:
        command = [str(BIN / "cnosdb-jaeger-storage"), *flags]
    proc = Proc("server", command, work / f"server-{tag}.log")
    sampler = None
    try:
        for port in (grpc_port, http_port, admin_port):
            wait_for_port(port, proc.process, "cnosdb-jaeger-storage")
        sampler = start_sampler(py_spy_dir, f"server-{tag}.txt", proc.pid)
        yield Plugin(proc, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{admin_port}")
    finally:
        stop_sampler(sampler)
        proc.stop()


# ---- CnosDB HTTP API, used directly -----------------------------------------------------------------

def lite_request(url: str, path: str, body: bytes, **params: str) -> bytes:
    query = urllib.parse.urlencode({"tenant": TENANT, "db": DATABASE, **params})
    request = urllib.request.Request(f"{url}{path}?{query}", data=body, method="POST", headers={
        "Authorization": "Basic cm9vdDo=", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.read()


def lite_sql(url: str, statement: str, database: str = "") -> list[dict]:
    body = lite_request(url, "/api/v1/sql", statement.encode(), db=database or DATABASE)
    return json.loads(body) if body.strip() else []


def span_count(url: str) -> int:
    try:
        rows = lite_sql(url, f"SELECT count(*) AS n FROM {TABLE}")
    except urllib.error.HTTPError:
        return 0  # no table yet
    return int(rows[0]["n"]) if rows else 0


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---- helpers -----------------------------------------------------------------------------------------

def header(title: str, what: str, target: str) -> None:
    print(f"\n== {title}\n   measured: {what}\n   target:   {target}", flush=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ts(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


# ---- 1. ingest ---------------------------------------------------------------------------------------

@dataclass
class IngestResult:
    label: str
    spans: int
    ack_s: float
    visible_s: float
    server_cpu: float
    lite_cpu: float
    client_cpu: float
    errors: int


async def _run_bounded(workers: list, max_seconds: float) -> None:
    await asyncio.wait_for(asyncio.gather(*workers), max_seconds)


async def send_http(url: str, bodies: list[bytes], connections: int, max_seconds: float) -> int:
    errors = 0
    it = iter(bodies)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                     timeout=timeout) as session:
        async def worker() -> None:
            nonlocal errors
            for body in it:
                async with session.post(url + "/v1/traces", data=body,
                                        headers={"Content-Type": "application/x-protobuf"}) as response:
                    await response.read()
                    errors += response.status != 200
        await _run_bounded([worker() for _ in range(connections)], max_seconds)
    return errors


async def send_otlp_grpc(target: str, bodies: list[bytes], streams: int, max_seconds: float) -> int:
    it = iter(bodies)
    channels = [grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
                for _ in range(streams)]

    async def worker(channel: grpc.aio.Channel) -> None:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                     request_serializer=None,
                                     response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString)
        for body in it:
            await export(body, timeout=120)  # pre-serialized: the client spends no CPU on protobuf

    try:
        await _run_bounded([worker(c) for c in channels], max_seconds)
    finally:
        for channel in channels:
            await channel.close()
    return 0


async def send_span_streams(target: str, streams_of_spans: list[list[bytes]], streams: int,
                            max_seconds: float) -> int:
    it = iter(streams_of_spans)
    channels = [grpc.aio.insecure_channel(target) for _ in range(streams)]

    async def worker(channel: grpc.aio.Channel) -> None:
        write = channel.stream_unary("/jaeger.storage.v1.StreamingSpanWriterPlugin/WriteSpanStream",
                                     request_serializer=None,
                                     response_deserializer=v1.WriteSpanResponse.FromString)
        for messages in it:
            await write(iter(messages), timeout=300)

    try:
        await _run_bounded([worker(c) for c in channels], max_seconds)
    finally:
        for channel in channels:
            await channel.close()
    return 0


def ingest_one(label: str, send: Callable[[], object], spans: int, plugin: Plugin, lite: ProcStats,
               lite_url: str) -> IngestResult:
    before = span_count(lite_url)
    cpu_server, cpu_lite, cpu_client = plugin.proc.cpu(), lite.cpu(), time.process_time()
    started = time.perf_counter()
    errors = asyncio.run(send())  # type: ignore[arg-type]
    acked = time.perf_counter()
    deadline = acked + 60
    while span_count(lite_url) < before + spans and time.perf_counter() < deadline:
        time.sleep(0.01)
    visible = time.perf_counter()
    missing = before + spans - span_count(lite_url)
    result = IngestResult(label, spans, acked - started, visible - started, plugin.proc.cpu() - cpu_server,
                          lite.cpu() - cpu_lite, time.process_time() - cpu_client, errors + max(0, missing))
    print(f"{label:22s} {spans:>8,} spans  {spans / result.visible_s:>9,.0f} spans/s "
          f"(ack {result.ack_s:.2f} s, queryable {result.visible_s:.2f} s)  server {result.server_cpu:6.2f} "
          f"CPU s = {result.server_cpu / spans * 1e6:5.1f} µs/span = {spans / result.server_cpu:>8,.0f} "
          f"spans/s/core  cnosdb-lite {result.lite_cpu / spans * 1e6:5.1f} µs/span  client "
          f"{result.client_cpu / spans * 1e6:5.1f} µs/span  errors {result.errors}", flush=True)
    return result


def ingest_section(args: argparse.Namespace, work: Path) -> None:
    groups = max(1, -(-args.spans // SPANS_PER_GROUP))
    n = groups * SPANS_PER_GROUP
    header("1. Ingest", f"{n:,} spans per transport (512-span requests, {args.http_connections} HTTP "
           f"connections / {args.grpc_streams} gRPC streams), from the first send until acknowledged and a "
           "count(*) sees them all; CPU seconds of the server process alone (cnosdb-lite apart)",
           "OTLP/HTTP >= 50k spans/s per core of server CPU; WriteSpanStream >= 20k spans/s")
    templates = _templates()
    now = time.time_ns()
    run_base = random.getrandbits(31) << 8
    with cnosdb_lite(work / "ingest-data", work, args.py_spy) as (lite, lite_url), \
            plugin_server(lite_url, work, args.profile_server, "ingest", args.server_arg,
                          args.py_spy) as plugin:

        def make(run: int, count_groups: int) -> Spans:
            return Spans(run_base + run, count_groups, now - HOUR_NS, HOUR_NS // (count_groups * SPANS_PER_REQUEST))

        def otlp_bodies(spans: Spans) -> list[bytes]:
            return [r.SerializeToString() for g in range(spans.groups) for r in spans.requests(g, templates)]

        def jaeger_streams(spans: Spans) -> list[list[bytes]]:
            messages = [v1.WriteSpanRequest(span=s).SerializeToString()
                        for g in range(spans.groups) for r in spans.requests(g, templates)
                        for s in resource_spans_to_jaeger(r.resource_spans)]
            per = args.stream_spans
            return [messages[i:i + per] for i in range(0, len(messages), per)]

        warm = make(0, 1)  # creates the table and warms every path
        asyncio.run(send_http(plugin.http_url, otlp_bodies(warm)[:2], 2, 60))
        asyncio.run(send_otlp_grpc(plugin.grpc_target, otlp_bodies(warm)[2:4], 1, 60))
        asyncio.run(send_span_streams(plugin.grpc_target, [jaeger_streams(warm)[0][:500]], 1, 60))

        transports = {t.strip() for t in args.transports.split(",")}
        if "http" in transports:
            t = time.perf_counter()
            http_bodies = otlp_bodies(make(1, groups))
            print(f"(generated {len(http_bodies)} OTLP requests, {sum(map(len, http_bodies)) / n:.0f} B/span "
                  f"protobuf, in {time.perf_counter() - t:.1f} s)", flush=True)
            ingest_one("OTLP/HTTP /v1/traces", partial(
                send_http, plugin.http_url, http_bodies, args.http_connections, args.max_seconds),
                n, plugin, lite, lite_url)
            del http_bodies
        if "grpc" in transports:
            grpc_bodies = otlp_bodies(make(2, groups))
            ingest_one("OTLP/gRPC Export", partial(
                send_otlp_grpc, plugin.grpc_target, grpc_bodies, args.grpc_streams, args.max_seconds),
                n, plugin, lite, lite_url)
            del grpc_bodies
        if "stream" in transports:
            t = time.perf_counter()
            streams = jaeger_streams(make(3, groups))
            print(f"(converted to {sum(map(len, streams)):,} Jaeger WriteSpanRequests in {len(streams)} streams, "
                  f"{sum(len(m) for s in streams for m in s) / n:.0f} B/span, in {time.perf_counter() - t:.1f} s)",
                  flush=True)
            ingest_one("v1 WriteSpanStream", partial(
                send_span_streams, plugin.grpc_target, streams, args.grpc_streams, args.max_seconds),
                n, plugin, lite, lite_url)
        print(f"peak RSS (VmHWM): server {plugin.proc.status_mb('VmHWM'):,.0f} MB, "
              f"cnosdb-lite {lite.status_mb('VmHWM'):,.0f} MB")


# ---- 2. queries --------------------------------------------------------------------------------------

def load_stored(url: str, spans: Spans, lite: ProcStats) -> None:
    lite_sql(url, query_builder.create_database(DATABASE, "30d"), database="public")
    started, cpu = time.perf_counter(), lite.cpu()
    with ProcessPoolExecutor(max_workers=1) as pool:
        window: list[Future[bytes]] = []
        next_group = 0
        written = 0
        while next_group < spans.groups or window:
            while next_group < spans.groups and len(window) < 4:
                window.append(pool.submit(_line_protocol_group, spans, next_group))
                next_group += 1
            body = window.pop(0).result()
            lite_request(url, "/api/v1/write", body, precision="ns")
            written += SPANS_PER_GROUP
            if written % 200_000 < SPANS_PER_GROUP:
                print(f"  loaded {written:,} spans ({written / (time.perf_counter() - started):,.0f} spans/s)",
                      flush=True)
    elapsed = time.perf_counter() - started
    print(f"loaded {spans.count:,} spans as line protocol in {elapsed:.1f} s ({spans.count / elapsed:,.0f} spans/s;"
          f" database {(lite.cpu() - cpu) / spans.count * 1e6:.1f} CPU µs/span)", flush=True)


def timed(samples: int, call: Callable[[int], object]) -> tuple[list[float], object]:
    call(-1)  # warm
    times, last = [], None
    for i in range(samples):
        t = time.perf_counter()
        last = call(i)
        times.append((time.perf_counter() - t) * 1000)
    return times, last


def report(label: str, times: list[float], note: str = "") -> None:
    print(f"{label:44s} p50 {statistics.median(times):8.1f} ms   p99 {percentile(times, 0.99):8.1f} ms   "
          f"max {max(times):8.1f} ms   (n={len(times)}){'  ' + note if note else ''}", flush=True)


def query_section(args: argparse.Namespace, work: Path) -> None:
    groups = max(1, -(-args.stored // SPANS_PER_GROUP))
    now = time.time_ns()
    window_ns = 23 * HOUR_NS
    spans = Spans(random.getrandbits(31) << 8, groups, now - window_ns, window_ns // (groups * SPANS_PER_REQUEST))
    header("2. Queries", f"latency through the server (sequential calls, gRPC loopback) with {spans.count:,} spans "
           f"({spans.traces:,} traces over the last 23 h) stored in {args.cnosdb_url or 'cnosdb-lite'}; "
           "disk and peak RSS",
           "GetTrace p99 <= 50 ms; FindTraces with a tag p99 <= 300 ms (at 1M spans)")
    data_dir = work / "query-data"
    rnd = random.Random(7)
    with database(args, data_dir, work) as (lite, lite_url):
        load_stored(lite_url, spans, lite)
        print(f"count(*) = {span_count(lite_url):,}", flush=True)
        if not args.cnosdb_url:
            print(f"data dir {dir_bytes(data_dir) / spans.count:.1f} B/span while running "
                  f"(WAL + Parquet, {dir_bytes(data_dir) / 1e6:,.0f} MB)", flush=True)
        with plugin_server(lite_url, work, args.profile_server, "query", args.server_arg,
                               args.py_spy) as plugin:
            channel = grpc.insecure_channel(plugin.grpc_target, options=[("grpc.max_receive_message_length", 64 << 20)])
            reader = storage_v1_grpc.SpanReaderPluginStub(channel)
            deps_v1 = storage_v1_grpc.DependenciesReaderPluginStub(channel)
            reader_v2 = trace_storage_grpc.TraceReaderStub(channel)
            deps_v2 = dependency_storage_grpc.DependencyReaderStub(channel)
            end = time.time_ns()
            start = end - 24 * HOUR_NS
            probe = [spans.trace_id(rnd.randrange(spans.traces)) for _ in range(args.samples + 1)]

            def get_trace(i: int) -> int:
                chunks = reader.GetTrace(v1.GetTraceRequest(trace_id=probe[i]), timeout=60)
                return sum(len(c.spans) for c in chunks)

            times, n = timed(args.samples, get_trace)
            report("v1 GetTrace", times, f"{n} spans per trace")

            def get_traces_v2(i: int) -> int:
                chunks = reader_v2.GetTraces(trace_storage_pb2.GetTracesRequest(
                    query=[trace_storage_pb2.GetTraceParams(trace_id=probe[i])]), timeout=60)
                return sum(len(ss.spans) for c in chunks for rs in c.resource_spans for ss in rs.scope_spans)

            times, n = timed(args.samples, get_traces_v2)
            report("v2 GetTraces (1 ID)", times, f"{n} spans per trace")

            def v1_query(i: int) -> v1.TraceQueryParameters:
                return v1.TraceQueryParameters(
                    service_name=f"service-{i % SERVICES}", tags={TAG_KEY: str(TAG_VALUE)},
                    start_time_min=ts(start), start_time_max=ts(end), num_traces=20)

            def find_traces(i: int) -> tuple[int, int]:
                chunks = list(reader.FindTraces(v1.FindTracesRequest(query=v1_query(i)), timeout=120))
                found = {s.trace_id for c in chunks for s in c.spans}
                return len(found), sum(len(c.spans) for c in chunks)

            times, (traces, n) = timed(args.find_samples, find_traces)
            report(f"v1 FindTraces service+{TAG_KEY}, 20", times, f"{traces} traces, {n} spans")

            def find_trace_ids(i: int) -> int:
                return len(reader.FindTraceIDs(v1.FindTraceIDsRequest(query=v1_query(i)), timeout=120).trace_ids)

            times, n = timed(args.find_samples, find_trace_ids)
            report(f"v1 FindTraceIDs service+{TAG_KEY}, 20", times, f"{n} IDs")

            def find_traces_v2(i: int) -> tuple[int, int]:
                query = trace_storage_pb2.TraceQueryParameters(
                    service_name=f"service-{i % SERVICES}", start_time_min=ts(start), start_time_max=ts(end),
                    attributes=[trace_storage_pb2.KeyValue(key=TAG_KEY,
                                                           value=trace_storage_pb2.AnyValue(int_value=TAG_VALUE))],
                    search_depth=20)
                chunks = list(reader_v2.FindTraces(trace_storage_pb2.FindTracesRequest(query=query), timeout=120))
                found = {s.trace_id for c in chunks for rs in c.resource_spans for ss in rs.scope_spans
                         for s in ss.spans}
                return len(found), sum(len(ss.spans) for c in chunks for rs in c.resource_spans
                                       for ss in rs.scope_spans)

            times, (traces, n) = timed(args.find_samples, find_traces_v2)
            report(f"v2 FindTraces service+{TAG_KEY}, 20", times, f"{traces} traces, {n} spans")

            def dependencies_v1(_: int) -> int:
                return len(deps_v1.GetDependencies(v1.GetDependenciesRequest(
                    start_time=ts(start), end_time=ts(end)), timeout=600).dependencies)

            times, n = timed(args.dep_samples, dependencies_v1)
            report("v1 GetDependencies 24 h", times, f"{n} links")

            def dependencies_v2(_: int) -> int:
                return len(deps_v2.GetDependencies(dependency_storage_pb2.GetDependenciesRequest(
                    start_time=ts(start), end_time=ts(end)), timeout=600).dependencies)

            times, n = timed(args.dep_samples, dependencies_v2)
            report("v2 GetDependencies 24 h", times, f"{n} links")

            times, n = timed(args.samples // 4 or 1, lambda _: len(reader.GetServices(
                v1.GetServicesRequest(), timeout=60).services))
            report("v1 GetServices", times, f"{n} services")
            times, n = timed(args.samples // 4 or 1, lambda i: len(reader.GetOperations(
                v1.GetOperationsRequest(service=f"service-{i % SERVICES}"), timeout=60).operations))
            report("v1 GetOperations", times, f"{n} operations")
            channel.close()
            server_hwm = plugin.proc.status_mb("VmHWM")
        sql_breakdown(lite_url, spans, start, end, probe, max(5, args.find_samples // 2))
        lite_hwm = lite.status_mb("VmHWM")
    print(f"peak RSS (VmHWM): server {server_hwm:,.0f} MB, cnosdb-lite {lite_hwm:,.0f} MB "
          f"({lite_hwm * 2**20 / spans.count:,.0f} B/span)")
    if args.cnosdb_url:
        return
    parquet = sum(p.stat().st_size for p in data_dir.rglob("*.parquet"))
    print(f"on disk after a clean stop (checkpoint): {dir_bytes(data_dir) / spans.count:.1f} B/span "
          f"({dir_bytes(data_dir) / 1e6:,.0f} MB; Parquet {parquet / spans.count:.1f} B/span)")


def sql_breakdown(url: str, spans: Spans, start: int, end: int, probe: list[bytes], samples: int) -> None:
    """The statements the server sends, timed straight against cnosdb-lite's HTTP API (no plugin), and the
    plugin's row decoding and Jaeger conversion of their results timed in this process."""
    print("-- where the time goes: the server's SQL run directly on cnosdb-lite (HTTP + JSON), p50 / p99 ms")
    from cnosdb_jaeger_storage.model.jaeger_otlp import records_to_jaeger
    from cnosdb_jaeger_storage.model.span_rows import rows_to_records, rows_to_resource_spans
    from cnosdb_jaeger_storage.storage.store import _group_rows

    columns = frozenset(r["column_name"] for r in lite_sql(url, query_builder.describe_table(TABLE)))

    def query(i: int) -> TraceQuery:
        return TraceQuery(service=f"service-{i % SERVICES}", attributes={TAG_KEY: str(TAG_VALUE)},
                          start_min=start, start_max=end, limit=20)

    found = [r["trace_id"] for r in lite_sql(url, query_builder.find_trace_ids(TABLE, query(0), columns) or "")]
    statements: list[tuple[str, Callable[[int], str]]] = [
        ("DESCRIBE TABLE (per tag search)", lambda _: query_builder.describe_table(TABLE)),
        ("find_trace_ids service+tag, 20", lambda i: query_builder.find_trace_ids(TABLE, query(i), columns) or ""),
        ("spans_of_traces, 1 ID (GetTrace)", lambda i: query_builder.spans_of_traces(TABLE, [probe[i].hex()])),
        ("spans_of_traces, 20 IDs (FindTraces)", lambda _: query_builder.spans_of_traces(TABLE, found)),
        ("trace_bounds, 20 IDs (v2 FindTraceIDs)", lambda _: query_builder.trace_bounds(TABLE, found)),
        ("span_services, 1 h (dependencies: 24 of them)",
         lambda _: query_builder.span_services(TABLE, end - HOUR_NS, end)),
        ("services", lambda _: query_builder.services(TABLE)),
        ("count(*)", lambda _: f"SELECT count(*) FROM {TABLE}"),
    ]
    for label, statement in statements:
        n = samples if "dependencies" not in label else max(3, samples // 5)
        times, rows = timed(n, lambda i, statement=statement: lite_sql(url, statement(max(i, 0))))
        print(f"   {label:40s} {statistics.median(times):8.1f} / {percentile(times, 0.99):8.1f} ms   "
              f"({len(rows)} rows)", flush=True)
    body = lite_request(url, "/api/v1/sql", query_builder.spans_of_traces(TABLE, found).encode())
    rows = json.loads(body)
    for label, work in (
            ("json.loads of the 20-trace result", lambda _: json.loads(body)),
            ("rows -> OTLP (v2 FindTraces)", lambda _: [rows_to_resource_spans(g)
                                                         for g in _group_rows(rows).values()]),
            ("rows -> Jaeger (v1 FindTraces)", lambda _: [records_to_jaeger(rows_to_records(g))
                                                           for g in _group_rows(rows).values()])):
        times, _ = timed(max(5, samples // 2), work)
        print(f"   {label:40s} {statistics.median(times):8.1f} ms   ({len(rows)} rows, {len(body) / 1e3:,.0f} kB JSON)",
              flush=True)


def main() -> None:
    global DATABASE
    if "--compare-jaeger" in sys.argv[1:]:
        from bench import _compare
        _compare.main([a for a in sys.argv[1:] if a != "--compare-jaeger"])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000, help="spans sent per ingest transport")
    parser.add_argument("--stored", type=int, default=1_000_000, help="spans stored for the query section")
    parser.add_argument("--sections", default="ingest,query", help="comma list of: ingest, query")
    parser.add_argument("--transports", default="http,grpc,stream", help="ingest paths: http, grpc, stream")
    parser.add_argument("--http-connections", type=int, default=8)
    parser.add_argument("--grpc-streams", type=int, default=4)
    parser.add_argument("--stream-spans", type=int, default=5000, help="spans per WriteSpanStream call")
    parser.add_argument("--max-seconds", type=float, default=600, help="bound of each ingest run")
    parser.add_argument("--samples", type=int, default=200, help="GetTrace samples")
    parser.add_argument("--find-samples", type=int, default=50, help="FindTraces samples")
    parser.add_argument("--dep-samples", type=int, default=10, help="GetDependencies samples")
    parser.add_argument("--profile-server", metavar="DIR", help="run the server under cProfile, stats to DIR")
    parser.add_argument("--py-spy", metavar="DIR", help="sample the server with py-spy (on PATH), stacks to DIR")
    parser.add_argument("--server-arg", action="append", default=[], help="extra server flag (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, logs)")
    parser.add_argument("--compare-jaeger", action="store_true",
                        help="instead: side by side with Jaeger remote-storage and no-op ceilings (bench/_compare.py;"
                             " its options: --compare-jaeger --help)")
    parser.add_argument("--cnosdb-url", default="",
                        help="query section: a running CnosDB (http://host:8902, user root) instead of a cnosdb-lite")
    parser.add_argument("--cnosdb-pid", type=int, help="with --cnosdb-url: its local PID, to report its CPU and RSS")
    parser.add_argument("--database", default=DATABASE, help="database the spans go to (use a new one per run)")
    args = parser.parse_args()
    DATABASE = args.database
    work = Path(tempfile.mkdtemp(prefix="bench-plugin-"))
    print(f"bench.plugin: {os.cpu_count()} cores, Python {sys.version.split()[0]}, work dir {work}")
    run_sections(args, work, {"ingest": ingest_section, "query": query_section})


def run_sections(args: argparse.Namespace, work: Path,
                 sections: dict[str, Callable[[argparse.Namespace, Path], None]]) -> None:
    """Runs those of `sections` that `args.sections` names, in their order here; then removes `work`
    unless `args.keep`."""
    chosen = {s.strip() for s in args.sections.split(",")}
    try:
        for name, section in sections.items():
            if name in chosen:
                section(args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
