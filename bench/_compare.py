"""Side by side with Jaeger's own remote-storage: `python -m bench.plugin --compare-jaeger [options]`.

The same synthetic spans (bench/_synthetic.py, as in bench.plugin), sent by the same client code, go to:

- this project's server with its embedded default (cnosdb-lite inside the server process: whole backend CPU
  is that one process);
- this project's server with `--cnosdb-url` to a cnosdb-lite process (server and database CPU read apart:
  the "remote CnosDB" figure);
- Jaeger remote-storage v1.76.0 with its memory backend (`SPAN_STORAGE_TYPE=memory`), built by
  `make -C e2e build`. On one gRPC port it serves the v1 storage API, the v2 TraceReader and OTLP
  TraceService/Export; it has no OTLP/HTTP receiver (its row on that path is the same requests through
  Export) and no streaming writer (WriteSpanStream answers Unimplemented: its row there is the same spans
  through unary WriteSpan, 16 calls in flight);
- no-op ceilings on the same libraries (bench/_noop.py): grpc.aio that only decodes Export, WriteSpan and
  WriteSpanStream requests, aiohttp that only reads the body; and the bare protobuf decode in this process.

CPU is each process's time on a CPU, summed over its threads (/proc/<pid>/task/*/schedstat, in nanoseconds;
utime + stime from /proc/<pid>/stat, in 10 ms ticks, if a thread ended), from the first send until the
processes are idle after the last acknowledgement (`--settle` seconds at most: deferred work such as Go's GC
counts), divided by the spans (or calls); this machine is shared, so CPU per span is the figure to compare,
wall rates are noisier. Each measurement is repeated `--rounds` times, targets taking turns; a range is
min–max over rounds, a ratio is the median of the row's whole-backend CPU over the median of Jaeger's.

Last, the targets of issue 10 are checked against the medians (section `summary`).

Options: --spans N (per ingest path and round), --stored N (GetTrace), --rounds N, --sections
ingest,unary,query,summary, --seconds / --low-seconds / --in-flight (unary WriteSpan), --samples (GetTrace).
Defaults take about 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.internal import api_implementation

from bench import plugin as bp
from bench import unary_write
from cnosdb_jaeger_storage.proto import storage_v1_grpc, trace_service_pb2, trace_storage_grpc, trace_storage_pb2
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as v1

JAEGER_VERSION = "v1.76.0"
EMBEDDED, REMOTE, JAEGER, NOOP = "embedded", "remote", "jaeger", "noop"
SETTLE_LIMIT = 3.0  # --settle
SHORT = {EMBEDDED: "embedded", REMOTE: "to cnosdb-lite"}
RESULTS: dict[str, dict[str, Row]] = {}  # each section's rows by target, for the summary: grpc, http, stream,
# unary-low, unary, get-trace
LABELS = {
    EMBEDDED: "this project, embedded default",
    REMOTE: "this project + cnosdb-lite process",
    JAEGER: f"Jaeger remote-storage {JAEGER_VERSION} (memory)",
    NOOP: "no-op ceiling",
}


# ---- processes ---------------------------------------------------------------------------------------

def jaeger_bin_dir() -> Path:
    """Where `make -C e2e build` puts the Jaeger binaries (JAEGER_CACHE, else under XDG_CACHE_HOME)."""
    if os.environ.get("JAEGER_CACHE"):
        return Path(os.environ["JAEGER_CACHE"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cnosdb-jaeger-storage" / f"jaeger-{JAEGER_VERSION}"


def remote_storage_binary() -> Path:
    path = jaeger_bin_dir() / "remote-storage"
    if not os.access(path, os.X_OK):
        sys.exit(f"bench: no Jaeger {JAEGER_VERSION} remote-storage at {path}. Build it with `make -C e2e build` "
                 "(needs Go; PATH=$PATH:/usr/local/go/bin), or set XDG_CACHE_HOME / JAEGER_CACHE as for that build.")
    return path


@dataclass(frozen=True)
class CpuMark:
    """A process's CPU so far: utime + stime in clock ticks (/proc/<pid>/stat, 10 ms steps) and each live
    thread's nanoseconds on a CPU (/proc/<pid>/task/<tid>/schedstat)."""

    ticks: float
    threads: dict[int, int]


def cpu_mark(stats: bp.ProcStats) -> CpuMark:
    threads: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{stats.pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                threads[int(task.name)] = int((task / "schedstat").read_text().split()[0])
    return CpuMark(stats.cpu(), threads)


def cpu_between(a: CpuMark, b: CpuMark) -> float:
    """CPU seconds from `a` to `b`: summed over threads in nanoseconds when no thread ended in between (one
    that ended takes its time with it), else from the clock ticks."""
    if b.threads and a.threads.keys() <= b.threads.keys():
        return sum(ns - a.threads.get(tid, 0) for tid, ns in b.threads.items()) / 1e9
    return b.ticks - a.ticks


@dataclass
class Target:
    """A backend under test: its gRPC and OTLP/HTTP addresses, the processes whose CPU counts, and how many spans
    it has stored (None: trust the acknowledgement)."""

    key: str
    grpc: str
    http: str | None
    procs: dict[str, bp.ProcStats]
    count: Callable[[], int] | None = None

    def cpu(self) -> dict[str, CpuMark]:
        return {name: cpu_mark(proc) for name, proc in self.procs.items()}

    def cpu_since(self, marks: dict[str, CpuMark]) -> dict[str, float]:
        return {name: cpu_between(marks[name], now) for name, now in self.cpu().items()}

    def stored(self) -> int:
        return self.count() if self.count else 0


@contextlib.contextmanager
def start_targets(keys: list[str], work: Path, server_args: list[str]) -> Iterator[dict[str, Target]]:
    """The targets named by `keys`, each on free loopback ports, all running together; stopped on exit."""
    with contextlib.ExitStack() as stack:
        targets: dict[str, Target] = {}
        for key in keys:
            home = work / key
            home.mkdir(parents=True, exist_ok=True)
            if key == EMBEDDED:
                server = stack.enter_context(bp.plugin_server("", home, None, key, server_args))
                targets[key] = Target(key, server.grpc_target, server.http_url, {"server": server.proc},
                                      count=server.spans_written)
            elif key == REMOTE:
                lite, lite_url = stack.enter_context(bp.cnosdb_lite(home / "data", home))
                server = stack.enter_context(bp.plugin_server(lite_url, home, None, key, server_args))
                targets[key] = Target(key, server.grpc_target, server.http_url,
                                      {"server": server.proc, "cnosdb-lite": lite},
                                      count=functools.partial(bp.span_count, lite_url))
            elif key == JAEGER:
                port, admin = bp.free_port(), bp.free_port()
                proc = stack.enter_context(_stopping(bp.Proc(
                    "remote-storage", [str(remote_storage_binary()), f"--grpc.host-port=127.0.0.1:{port}",
                                       f"--admin.http.host-port=127.0.0.1:{admin}"],
                    home / "remote-storage.log", env={"SPAN_STORAGE_TYPE": "memory"})))
                bp.wait_for_port(port, proc.process, "jaeger remote-storage")
                targets[key] = Target(key, f"127.0.0.1:{port}", None, {"remote-storage": proc})
            else:
                grpc_port, http_port = bp.free_port(), bp.free_port()
                proc = stack.enter_context(_stopping(bp.Proc(
                    "no-op", [sys.executable, "-m", "bench._noop", "--grpc-addr", f"127.0.0.1:{grpc_port}",
                              "--http-addr", f"127.0.0.1:{http_port}"], home / "noop.log")))
                for port in (grpc_port, http_port):
                    bp.wait_for_port(port, proc.process, "bench._noop")
                targets[key] = Target(key, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}",
                                      {"no-op": proc})
        yield targets


@contextlib.contextmanager
def _stopping(proc: bp.Proc) -> Iterator[bp.Proc]:
    try:
        yield proc
    finally:
        proc.stop()


# ---- measurements ------------------------------------------------------------------------------------

@dataclass
class Run:
    """One measurement: `count` spans (or calls) in `wall` seconds, CPU seconds per process."""

    count: int
    wall: float
    cpu: dict[str, float]
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    settled: float = 0.0  # seconds after the last acknowledgement until the processes were idle


@dataclass
class Row:
    label: str
    runs: list[Run] = field(default_factory=list)
    note: str = ""


def settle(target: Target, limit: float) -> float:
    """Waits, `limit` seconds at most, until the target's processes are idle (under 5 ms of CPU in 100 ms),
    so that work left after the acknowledgements (Go's GC, flushes) counts; returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        mark = target.cpu()
        time.sleep(0.1)
        if sum(target.cpu_since(mark).values()) < 0.005:
            break
    return time.perf_counter() - started


def measure(target: Target, send: Coroutine[None, None, object], expected: int) -> Run:
    """Sends; reads each process's CPU from the first send until idle after the last acknowledgement (wall
    time ends at that acknowledgement); then checks that the target stored as many more spans as were
    acknowledged (outside the CPU window: the count is a query of its own). `send` (not started yet)
    returns its errors, or unary_write.drive's (acknowledged, latencies, errors)."""
    before = target.stored()
    cpu = target.cpu()
    started = time.perf_counter()
    result = asyncio.run(send)
    wall = time.perf_counter() - started
    settled = settle(target, SETTLE_LIMIT)
    used = target.cpu_since(cpu)
    if isinstance(result, tuple):
        count, latencies, errors = result[0], [x * 1000 for x in result[1]], result[2]
    else:
        count, latencies, errors = expected, [], int(result or 0)
    if target.count:
        errors += max(0, before + count - target.stored())
    return Run(count, wall, used, latencies, errors, settled)


def decode_run(bodies: list[bytes], parse: Callable[[bytes], object], spans: int) -> Run:
    """The bare protobuf decode of `bodies` in this process (CPU time)."""
    cpu = time.process_time()
    for body in bodies:
        parse(body)
    used = time.process_time() - cpu
    return Run(spans, used, {"this process": used})


def otlp_bodies(run: int, groups: int, span_ns: int, templates: list) -> list[bytes]:
    """OTLP Export requests of `groups` groups of bench.plugin's synthetic traces over the last `span_ns`."""
    spans = bp.Spans(run, groups, time.time_ns() - span_ns, span_ns // (groups * bp.SPANS_PER_REQUEST))
    return [r.SerializeToString() for g in range(groups) for r in spans.requests(g, templates)]


# ---- printing ----------------------------------------------------------------------------------------

def span_range(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else f"{format(low, fmt)}–{format(high, fmt)}"


def whole(run: Run, scale: float) -> float:
    return sum(run.cpu.values()) / max(run.count, 1) * scale


def print_table(title: str, rows: list[Row], reference: Row | None, unit: str = "span", scale: float = 1e6,
                cpu_unit: str = "µs", per_core: bool = False) -> None:
    """One line per row; `per_core`: also the spans per second per core of a server whose database is a
    process of its own."""
    print(f"\n-- {title}")
    print(f"   {'':44s} {unit + 's/s (wall)':>21s} {'CPU ' + cpu_unit + '/' + unit:>14s} {'× Jaeger':>9s}  "
          "CPU by process; latency")
    ref = statistics.median(whole(r, scale) for r in reference.runs) if reference and reference.runs else None
    for row in rows:
        if not row.runs:
            continue
        rate = span_range([r.count / r.wall for r in row.runs], ",.0f")
        cpu = [whole(r, scale) for r in row.runs]
        ratio = f"{statistics.median(cpu) / ref:.2f}×" if ref else "-"
        parts = " + ".join(f"{name} {span_range([r.cpu[name] / max(r.count, 1) * scale for r in row.runs], '.1f')}"
                           for name in row.runs[0].cpu)
        extra = [parts]
        if per_core and {"server", "cnosdb-lite"} <= row.runs[0].cpu.keys():
            extra.append(f"server alone {span_range([r.count / r.cpu['server'] for r in row.runs], ',.0f')} "
                         "spans/s per core")
        if row.runs[0].latencies_ms:
            extra.append(f"p50 {span_range([statistics.median(r.latencies_ms) for r in row.runs], '.2f')} ms, "
                         f"p99 {span_range([bp.percentile(r.latencies_ms, 0.99) for r in row.runs], '.2f')} ms")
        errors = sum(r.errors for r in row.runs)
        if errors:
            extra.append(f"ERRORS {errors}")
        if row.note:
            extra.append(row.note)
        print(f"   {row.label:44s} {rate:>21s} {span_range(cpu, '.1f'):>14s} {ratio:>9s}  {'; '.join(extra)}",
              flush=True)


def progress(path: str, round_: int, key: str, run: Run) -> None:
    print(f"   . {path} round {round_ + 1} {key}: {run.count:,} in {run.wall:.2f} s, idle {run.settled:.1f} s later",
          flush=True)


# ---- sections ----------------------------------------------------------------------------------------

def ingest_section(args: argparse.Namespace, work: Path) -> None:
    groups = max(1, -(-args.spans // bp.SPANS_PER_GROUP))
    n = groups * bp.SPANS_PER_GROUP
    print(f"\n== Ingest: {n:,} spans per path, target and round ({bp.SPANS_PER_REQUEST} spans per OTLP request, "
          f"{args.http_connections} HTTP connections / {args.grpc_streams} gRPC channels; WriteSpanStream "
          f"{args.stream_spans} spans per call); wall time from the first send to the last acknowledgement, CPU until "
          "the processes are idle after it")
    templates = bp._templates()
    base = random.getrandbits(31) << 8
    keys = [EMBEDDED, REMOTE, JAEGER, NOOP]
    with start_targets(keys, work / "ingest", args.server_arg) as targets:
        warm = otlp_bodies(base, 1, bp.HOUR_NS, templates)  # creates the tables, warms every path
        warm_v1 = unary_write.messages(base, 600)
        for key, target in targets.items():
            asyncio.run(bp.send_otlp_grpc(target.grpc, warm[:2], 1, 60))
            if target.http:
                asyncio.run(bp.send_http(target.http, warm[2:4], 2, 60))
            asyncio.run(unary_write.drive(target.grpc, warm_v1[:100], 4, 60, 1))
            if key != JAEGER:
                asyncio.run(bp.send_span_streams(target.grpc, [warm_v1[100:]], 1, 60))
        seconds = args.max_seconds
        parse_otlp = trace_service_pb2.ExportTraceServiceRequest.FromString

        for path in args.paths.split(","):
            rows = {key: Row(LABELS[key]) for key in keys}
            decode = Row("protobuf decode only (this process)")
            for round_ in range(args.rounds):
                run = base + 16 * (round_ + 1) + {"http": 1, "grpc": 2, "stream": 3}[path]
                if path in ("http", "grpc"):
                    bodies = otlp_bodies(run, groups, bp.HOUR_NS, templates)
                    decode.runs.append(decode_run(bodies, parse_otlp, n))
                else:
                    messages = unary_write.messages(run, n)
                    streams = [messages[i:i + args.stream_spans] for i in range(0, n, args.stream_spans)]
                    decode.runs.append(decode_run(messages, v1.WriteSpanRequest.FromString, n))
                for key, target in targets.items():
                    if path == "http" and target.http:
                        send = bp.send_http(target.http, bodies, args.http_connections, seconds)
                    elif path in ("http", "grpc"):
                        send = bp.send_otlp_grpc(target.grpc, bodies, args.grpc_streams, seconds)
                    elif key == JAEGER:
                        send = unary_write.drive(target.grpc, messages, args.in_flight, seconds, args.grpc_streams)
                    else:
                        send = bp.send_span_streams(target.grpc, streams, args.grpc_streams, seconds)
                    result = measure(target, send, n)
                    rows[key].runs.append(result)
                    progress(path, round_, key, result)
            if path == "http":
                title = "OTLP/HTTP POST /v1/traces (protobuf)"
                rows[JAEGER].note = "no OTLP/HTTP receiver: the same requests through OTLP/gRPC Export"
                rows[NOOP].label = "no-op aiohttp (reads the body)"
            elif path == "grpc":
                title = "OTLP/gRPC TraceService/Export"
                rows[NOOP].label = "no-op grpc.aio Export (decodes)"
            else:
                title = "Jaeger v1 StreamingSpanWriterPlugin/WriteSpanStream"
                rows[JAEGER].note = (f"WriteSpanStream is Unimplemented: the same spans through unary WriteSpan, "
                                     f"{args.in_flight} in flight")
                rows[NOOP].label = "no-op grpc.aio stream (decodes)"
            print_table(title, [*rows.values(), decode], rows[JAEGER], per_core=True)
            RESULTS[path] = rows


def unary_section(args: argparse.Namespace, work: Path) -> None:
    print(f"\n== v1 unary SpanWriterPlugin/WriteSpan, one span per call: 1 call in flight for {args.low_seconds:g} s, "
          f"then {args.in_flight} in flight over {args.grpc_streams} channels for {args.seconds:g} s (or until "
          f"{args.unary_spans:,} spans are sent); each call timed until acknowledged")
    base = random.getrandbits(31) << 8
    keys = [EMBEDDED, REMOTE, JAEGER, NOOP]
    with start_targets(keys, work / "unary", args.server_arg) as targets:
        low = {key: Row(LABELS[key]) for key in keys}
        loaded = {key: Row(LABELS[key]) for key in keys}
        for round_ in range(args.rounds):
            messages = unary_write.messages(base + 16 * round_, args.unary_spans + 200)
            warm, rest = messages[:200], messages[200:]
            split = len(rest) // 10
            for key, target in targets.items():
                if round_ == 0:
                    asyncio.run(unary_write.drive(target.grpc, warm, 4, 30, 1))
                result = measure(target, unary_write.drive(target.grpc, rest[:split], 1, args.low_seconds, 1), 0)
                low[key].runs.append(result)
                result = measure(target, unary_write.drive(
                    target.grpc, rest[split:], args.in_flight, args.seconds, args.grpc_streams), 0)
                loaded[key].runs.append(result)
                progress("unary", round_, key, result)
        print_table("WriteSpan, 1 call in flight", list(low.values()), low[JAEGER])
        print_table(f"WriteSpan, {args.in_flight} calls in flight", list(loaded.values()), loaded[JAEGER])
        RESULTS["unary-low"], RESULTS["unary"] = low, loaded


def query_section(args: argparse.Namespace, work: Path) -> None:
    groups = max(1, -(-args.stored // bp.SPANS_PER_GROUP))
    window_ns = 23 * bp.HOUR_NS
    run = random.getrandbits(31) << 8
    spans = bp.Spans(run, groups, 0, 1)
    bodies = otlp_bodies(run, groups, window_ns, bp._templates())
    print(f"\n== GetTrace with {spans.count:,} spans ({spans.traces:,} traces of 8 spans over the last 23 h) stored, "
          f"loaded into an empty store of each through OTLP/gRPC Export; {args.samples} sequential calls, "
          "gRPC loopback; CPU per call from the first call to the last answer")
    keys = [EMBEDDED, REMOTE, JAEGER]
    rnd = random.Random(7)
    probe = [spans.trace_id(rnd.randrange(spans.traces)) for _ in range(args.samples)]
    load: dict[str, Row] = {key: Row(LABELS[key]) for key in keys}
    v1_rows: dict[str, Row] = {key: Row(LABELS[key]) for key in keys}
    v2_rows: dict[str, Row] = {key: Row(LABELS[key]) for key in keys}
    with start_targets(keys, work / "query", args.server_arg) as targets:
        for key, target in targets.items():
            load[key].runs.append(measure(target, bp.send_otlp_grpc(
                target.grpc, bodies, args.grpc_streams, args.max_seconds), spans.count))
            progress("load", 0, key, load[key].runs[0])
        print_table("loading: OTLP/gRPC Export into an empty store", list(load.values()), load[JAEGER])
        for key, target in targets.items():
            channel = grpc.insecure_channel(target.grpc, options=[("grpc.max_receive_message_length", 64 << 20)])
            reader = storage_v1_grpc.SpanReaderPluginStub(channel)
            reader_v2 = trace_storage_grpc.TraceReaderStub(channel)

            def get_trace(trace_id: bytes, reader: storage_v1_grpc.SpanReaderPluginStub = reader) -> int:
                return sum(len(c.spans) for c in reader.GetTrace(v1.GetTraceRequest(trace_id=trace_id), timeout=60))

            def get_traces(trace_id: bytes, reader: trace_storage_grpc.TraceReaderStub = reader_v2) -> int:
                chunks = reader.GetTraces(trace_storage_pb2.GetTracesRequest(
                    query=[trace_storage_pb2.GetTraceParams(trace_id=trace_id)]), timeout=60)
                return sum(len(ss.spans) for c in chunks for rs in c.resource_spans for ss in rs.scope_spans)

            for call, rows in ((get_trace, v1_rows), (get_traces, v2_rows)):
                rows[key].runs.append(sequential_calls(target, call, probe))
            channel.close()
    RESULTS["get-trace"] = v1_rows
    print_table("v1 SpanReaderPlugin/GetTrace", list(v1_rows.values()), v1_rows[JAEGER], unit="call", scale=1e3,
                cpu_unit="ms")
    print_table("v2 TraceReader/GetTraces, 1 ID", list(v2_rows.values()), v2_rows[JAEGER], unit="call", scale=1e3,
                cpu_unit="ms")


def sequential_calls(target: Target, call: Callable[[bytes], int], probe: list[bytes]) -> Run:
    """`call` for each ID of `probe` in turn (after one warm-up); a result without 8 spans is an error."""
    call(probe[-1])
    latencies, errors = [], 0
    cpu = target.cpu()
    started = time.perf_counter()
    for trace_id in probe:
        t = time.perf_counter()
        errors += call(trace_id) != bp.SPANS_PER_TRACE
        latencies.append((time.perf_counter() - t) * 1000)
    wall = time.perf_counter() - started
    return Run(len(probe), wall, target.cpu_since(cpu), latencies, errors)


def summary(args: argparse.Namespace, work: Path) -> None:
    """The targets of issue 10 against the medians measured above (those whose section ran)."""
    print("\n== Targets (issue 10), from the medians above")

    def median(key: str, target: str, value: Callable[[Run], float]) -> float:
        return statistics.median(value(r) for r in RESULTS[key][target].runs)

    def check(what: str, figure: str, met: bool, note: str = "") -> None:
        print(f"   {what:72s} {figure:28s} {'met' if met else 'NOT met'}{'  ' + note if note else ''}")

    for path, name in (("grpc", "OTLP/gRPC"), ("http", "OTLP/HTTP")):
        if path in RESULTS:
            ours, jaeger = (median(path, key, lambda r: whole(r, 1e6)) for key in (EMBEDDED, JAEGER))
            check(f"{name} whole-backend CPU/span, embedded default <= 2x Jaeger's",
                  f"{ours / jaeger:.2f}x ({ours:.1f} / {jaeger:.1f} µs)", ours <= 2 * jaeger)
    for path, name in (("grpc", "OTLP/gRPC"), ("http", "OTLP/HTTP")):
        if path in RESULTS:
            rate = median(path, REMOTE, lambda r: r.count / r.cpu["server"])
            check(f"{name} to a CnosDB process, server CPU >= 50k spans/s per core", f"{rate:,.0f} spans/s/core",
                  rate >= 50_000)
    if "stream" in RESULTS:
        cpu = median("stream", REMOTE, lambda r: r.cpu["server"] / r.count * 1e6)
        check("v1 WriteSpanStream, server CPU (cnosdb-lite apart) <= 50 µs/span", f"{cpu:.1f} µs/span", cpu <= 50)
    if "unary" in RESULTS:
        for key in (EMBEDDED, REMOTE):
            rate = median("unary", key, lambda r: r.count / r.wall)
            check(f"unary WriteSpan, {args.in_flight} in flight, {SHORT[key]} >= 3,000 spans/s",
                  f"{rate:,.0f} spans/s", rate >= 3000)
        for key in (EMBEDDED, REMOTE):
            p50 = median("unary-low", key, lambda r: statistics.median(r.latencies_ms))
            check(f"unary WriteSpan ack p50 at 1 in flight, {SHORT[key]} <= 10 ms", f"{p50:.2f} ms", p50 <= 10)
    if "get-trace" in RESULTS:
        stored = max(1, -(-args.stored // bp.SPANS_PER_GROUP)) * bp.SPANS_PER_GROUP
        note = "" if stored >= 1_000_000 else f"(at {stored:,} spans stored; the target is at 1M: --stored 1000000)"
        cpu = median("get-trace", EMBEDDED, lambda r: whole(r, 1e3))
        check("v1 GetTrace whole-backend CPU per call, embedded default <= 3 ms", f"{cpu:.2f} ms", cpu <= 3, note)
        cpu = median("get-trace", REMOTE, lambda r: r.cpu["server"] / r.count * 1e3)
        check("v1 GetTrace server CPU per call (cnosdb-lite apart) <= 3 ms", f"{cpu:.2f} ms", cpu <= 3, note)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plugin --compare-jaeger",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000, help="spans per ingest path, target and round")
    parser.add_argument("--stored", type=int, default=100_000, help="spans stored for GetTrace")
    parser.add_argument("--rounds", type=int, default=2, help="repeats of each measurement (targets take turns)")
    parser.add_argument("--sections", default="ingest,unary,query,summary",
                        help="comma list of: ingest, unary, query, summary (the issue's targets checked)")
    parser.add_argument("--paths", default="grpc,http,stream", help="ingest paths: grpc, http, stream")
    parser.add_argument("--http-connections", type=int, default=8)
    parser.add_argument("--grpc-streams", type=int, default=4, help="gRPC channels of the ingest paths")
    parser.add_argument("--stream-spans", type=int, default=5000, help="spans per WriteSpanStream call")
    parser.add_argument("--in-flight", type=int, default=16, help="unary WriteSpan calls outstanding")
    parser.add_argument("--seconds", type=float, default=8, help="unary WriteSpan: the loaded phase")
    parser.add_argument("--low-seconds", type=float, default=3, help="unary WriteSpan: the 1-in-flight phase")
    parser.add_argument("--unary-spans", type=int, default=80_000, help="unary WriteSpan: spans per round, at most")
    parser.add_argument("--samples", type=int, default=200, help="GetTrace calls per target")
    parser.add_argument("--max-seconds", type=float, default=600, help="bound of each ingest run")
    parser.add_argument("--settle", type=float, default=3, help="at most this long for CPU after the last ack")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag of this project's server")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, logs)")
    args = parser.parse_args(argv)
    binary = remote_storage_binary()
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    print(f"bench.plugin --compare-jaeger: {os.cpu_count()} cores, Python {sys.version.split()[0]}, grpcio "
          f"{grpc.__version__}, protobuf {api_implementation.Type()}; reference {binary}\n"
          f"   {LABELS[EMBEDDED]}: cnosdb-jaeger-storage with no --cnosdb-url (cnosdb-lite in its process)\n"
          f"   {LABELS[REMOTE]}: --cnosdb-url to cnosdb-lite in a process of its own (CPU apart)\n"
          f"   {LABELS[JAEGER]}: SPAN_STORAGE_TYPE=memory; v1 API, v2 TraceReader, OTLP Export on one port\n"
          f"   no-op ceilings: bench/_noop.py (grpc.aio, aiohttp; on this project's event loop), decoding only\n"
          "   CPU = on-CPU time of every thread of each process (/proc/<pid>/task/*/schedstat; utime + stime of "
          f"/proc/<pid>/stat if a thread ended during a run), until idle after the last ack (<= {args.settle:g} s)\n"
          f"   ranges are min–max over {args.rounds} "
          "round(s); × Jaeger = median whole CPU over Jaeger's", flush=True)
    global SETTLE_LIMIT
    SETTLE_LIMIT = args.settle
    bp.run_sections(args, work, {"ingest": ingest_section, "unary": unary_section, "query": query_section,
                                 "summary": summary})
