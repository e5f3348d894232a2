"""Helpers shared by the end-to-end tests: subprocesses, ports, HTTP, the span data set.

Everything here talks to 127.0.0.1 only.  Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

REPO = Path(__file__).resolve().parent.parent
E2E_DIR = Path(__file__).resolve().parent
JAEGER_VERSION = "v1.76.0"

# Never send test traffic through a proxy, whatever the environment says.
_LOOPBACK = "127.0.0.1,localhost,::1"
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(x for x in (os.environ.get(_var, ""), _LOOPBACK) if x)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

GRPC_OPTIONS = [("grpc.enable_http_proxy", 0)]


def default_jaeger_bin_dir() -> Path:
    if os.environ.get("E2E_JAEGER_BIN_DIR"):
        return Path(os.environ["E2E_JAEGER_BIN_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "cnosdb-jaeger-storage" / f"jaeger-{JAEGER_VERSION}"


_handed_out: set[int] = set()
_LOWEST_PORT = 20000  # above Jaeger's fixed ports (scenario 3) and the usual well-known ones


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port() -> int:
    """A 127.0.0.1 port that nothing listens on, never handed out before in this session.

    Two races made a plain ``bind(port 0)`` flaky: the kernel may return the same port again once the probe
    socket is closed (two flags of one process then got the same port), and any outgoing connection may take
    it as its source port before the process under test binds it.  So ports are taken below the kernel's
    ephemeral range when there is room (outgoing connections never use those), and never twice.
    """
    low = _ephemeral_low()
    if low - _LOWEST_PORT >= 2000:
        for _ in range(2000):
            port = random.randint(_LOWEST_PORT, low - 1)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def _bindable(port: int) -> bool:
    """Strict check (no SO_REUSEADDR): not even a connection in TIME_WAIT holds the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now.

    SO_REUSEADDR, as Go's listeners set it: connections of an earlier run left in TIME_WAIT do not
    count, a live listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(
    fn: Callable[[], Any], *, timeout: float, interval: float = 0.5, what: str = "condition"
) -> Any:
    """Call ``fn`` until it returns a truthy value or ``timeout`` seconds pass.

    Exceptions raised by ``fn`` count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except ProcessDied:
            raise
        except Exception as exc:  # keep polling; report the last failure
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last result: {last!r}")
        time.sleep(interval)


# ---- subprocesses ------------------------------------------------------------


class ProcessDied(AssertionError):
    """A subprocess under test exited; waiting for it any longer is pointless."""


class Process:
    """A subprocess whose output goes to a log file; killed (whole group) at stop()."""

    registry: list[Process] = []  # noqa: RUF012 - shared on purpose: every live process, for log dumps

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_dir) / f"{name}.log"
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(("$ " + " ".join(self.argv) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.cwd, start_new_session=True,
            )
        Process.registry.append(self)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive:
            rc = self.proc.returncode if self.proc else None
            raise ProcessDied(f"{self.name} exited with code {rc}; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 150) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        if self in Process.registry:
            Process.registry.remove(self)

    def wait_ready(self, probe: Callable[[], Any], *, timeout: float, what: str) -> Any:
        def check():
            self.check_alive()
            return probe()

        try:
            return wait_until(check, timeout=timeout, interval=0.3, what=f"{self.name}: {what}")
        except ProcessDied:
            raise
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n---- {self.name} log ----\n{self.log_tail()}") from None


# ---- HTTP --------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(url: str, *, method: str = "GET", data: bytes | None = None, timeout: float = 15.0) -> Response:
    assert url.startswith("http://127.0.0.1:"), url
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return Response(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read(), dict(err.headers or {}))


def http_get(base: str, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None,
             timeout: float = 15.0) -> Response:
    url = base + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    return http_request(url, timeout=timeout)


def http_ok(url: str) -> bool:
    try:
        return http_request(url, timeout=3).status == 200
    except OSError:
        return False


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# ---- gRPC --------------------------------------------------------------------


def grpc_health_serving(addr: str, service: str = "") -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(addr, options=GRPC_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=3)
        return resp.status == health_pb2.HealthCheckResponse.SERVING


# ---- the span data set ---------------------------------------------------------

SERVICES = ("e2e-frontend", "e2e-backend", "e2e-db")
FRONTEND, BACKEND, DB = SERVICES
MS = 1_000_000  # nanoseconds


@dataclass
class SentSpan:
    label: str
    service: str
    name: str
    kind: str  # "server" | "client" | ...
    trace_id: str  # 32 lowercase hex chars
    span_id: str  # 16 lowercase hex chars
    parent_span_id: str | None
    start_ns: int
    end_ns: int

    @property
    def duration_us(self) -> int:
        return (self.end_ns - self.start_ns) // 1000

    @property
    def start_us(self) -> int:
        return self.start_ns // 1000


@dataclass
class DataSet:
    base_ns: int
    spans: dict[str, SentSpan]
    traces: dict[str, str]  # trace label -> trace id hex

    def trace_labels(self, ids: list[str]) -> set[str]:
        """Map Jaeger trace IDs (hex, maybe without leading zeros) back to our labels."""
        by_id = {tid.lstrip("0"): label for label, tid in self.traces.items()}
        return {by_id.get(i.lstrip("0"), f"<unknown {i}>") for i in ids}


def trace_labels_of(ds: DataSet, ui_traces: list[dict]) -> set[str]:
    """Labels of the traces in a Jaeger UI-JSON ``data`` list."""
    return ds.trace_labels([t["traceID"] for t in ui_traces])


def kv_map(obj: dict) -> dict[str, tuple[str, Any]]:
    """Jaeger UI-JSON tags (of a span or process) or log fields -> {key: (type, value)}."""
    return {kv["key"]: (kv["type"], kv["value"]) for kv in obj.get("tags") or obj.get("fields") or []}


def send_dataset(otlp_grpc_port: int | None = None, *,
                 exporter_factory: Callable[[], SpanExporter] | None = None) -> DataSet:
    """Emit the e2e spans through the OpenTelemetry SDK.

    The exporter is the SDK's OTLP/gRPC exporter to ``127.0.0.1:otlp_grpc_port`` unless
    ``exporter_factory`` is given, which then makes one exporter per service.  Every export must succeed.

    Traces (times relative to ``base``, which lies two minutes in the past):

    checkout  e2e-frontend SERVER "HTTP GET /checkout"   [0, 120ms]  string/int/float/bool/array attrs
              └ e2e-frontend CLIENT "call backend"        [5, 105ms]
                └ e2e-backend SERVER "POST /api/order"    [10, 100ms] event "order.validated"
                  └ e2e-backend CLIENT "db.query"         [30, 90ms]
                    └ e2e-db SERVER "SELECT orders"       [40, 80ms]  status ERROR + exception event
    health    e2e-frontend SERVER "HTTP GET /health"     [200, 202ms]
    browse10  e2e-frontend SERVER "HTTP GET /browse"     [300, 310ms] user.tier=gold
    browse20  e2e-frontend SERVER "HTTP GET /browse"     [400, 420ms] user.tier=silver
    browse30  e2e-frontend SERVER "HTTP GET /browse"     [500, 530ms] user.tier=gold, link -> checkout root
    """
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    if exporter_factory is None:
        if otlp_grpc_port is None:
            raise TypeError("send_dataset needs otlp_grpc_port or exporter_factory")

        def otlp_exporter() -> SpanExporter:
            return OTLPSpanExporter(endpoint=f"127.0.0.1:{otlp_grpc_port}", insecure=True, timeout=10)

        exporter_factory = otlp_exporter

    results: list[SpanExportResult] = []

    class RecordingExporter(SpanExporter):
        """Delegates to ``inner`` and records every export result."""

        def __init__(self, inner: SpanExporter) -> None:
            self.inner = inner

        def export(self, spans):  # type: ignore[override]
            result = self.inner.export(spans)
            results.append(result)
            return result

        def shutdown(self) -> None:
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return self.inner.force_flush(timeout_millis)

    providers = {}
    for svc in SERVICES:
        resource = Resource.create(
            {"service.name": svc, "deployment.environment": "e2e", "host.cores": 4}
        )
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(RecordingExporter(exporter_factory())))
        providers[svc] = provider
    tracers = {svc: p.get_tracer("e2e.scope", "1.2.3") for svc, p in providers.items()}

    # Whole microseconds, so µs values in Jaeger's JSON compare exactly.
    base = (time.time_ns() - 120_000 * MS) // 1000 * 1000
    spans: dict[str, SentSpan] = {}
    live: dict[str, Any] = {}

    def start(label, svc, name, kind, t0_ms, parent=None, attributes=None, links=None):
        ctx = trace.set_span_in_context(live[parent]) if parent else None
        span = tracers[svc].start_span(
            name, context=ctx, kind=kind, attributes=attributes or {}, links=links or [],
            start_time=base + t0_ms * MS,
        )
        live[label] = span
        sc = span.get_span_context()
        spans[label] = SentSpan(
            label=label, service=svc, name=name, kind=kind.name.lower(),
            trace_id=format(sc.trace_id, "032x"), span_id=format(sc.span_id, "016x"),
            parent_span_id=spans[parent].span_id if parent else None,
            start_ns=base + t0_ms * MS, end_ns=0,
        )
        return span

    def end(label, t1_ms):
        live[label].end(end_time=base + t1_ms * MS)
        spans[label].end_ns = base + t1_ms * MS

    # -- checkout: five spans over three services
    start("checkout", FRONTEND, "HTTP GET /checkout", SpanKind.SERVER, 0, attributes={
        "http.method": "GET", "http.status_code": 200, "http.url": "/checkout",
        "cart.ratio": 0.75, "user.vip": True, "cart.items": ["apple", "pear"],
    })
    start("call_backend", FRONTEND, "call backend", SpanKind.CLIENT, 5, parent="checkout",
          attributes={"peer.service": BACKEND})
    order = start("order", BACKEND, "POST /api/order", SpanKind.SERVER, 10, parent="call_backend",
                  attributes={"order.id": "o-1001"})
    order.add_event("order.validated", {"order.items": 3, "order.total": 42.5}, timestamp=base + 20 * MS)
    start("db_query", BACKEND, "db.query", SpanKind.CLIENT, 30, parent="order")
    select = start("select", DB, "SELECT orders", SpanKind.SERVER, 40, parent="db_query",
                   attributes={"db.system": "cnosdb", "db.rows": 0})
    select.record_exception(ValueError("disk on fire"), timestamp=base + 70 * MS)
    select.set_status(Status(StatusCode.ERROR, "disk on fire"))
    end("select", 80)
    end("db_query", 90)
    end("order", 100)
    end("call_backend", 105)
    end("checkout", 120)

    # -- single-span frontend traces
    start("health", FRONTEND, "HTTP GET /health", SpanKind.SERVER, 200, attributes={"http.status_code": 200})
    end("health", 202)
    for label, t0, dur, tier in (("browse10", 300, 10, "gold"), ("browse20", 400, 20, "silver"),
                                 ("browse30", 500, 30, "gold")):
        links = []
        if label == "browse30":
            links = [Link(live["checkout"].get_span_context(), {"link.reason": "follow-up"})]
        start(label, FRONTEND, "HTTP GET /browse", SpanKind.SERVER, t0, links=links,
              attributes={"http.status_code": 200, "user.tier": tier})
        end(label, t0 + dur)

    for p in providers.values():
        assert p.force_flush(timeout_millis=30_000), "OTel SDK force_flush timed out"
        p.shutdown()
    assert results and all(r == SpanExportResult.SUCCESS for r in results), (
        f"span export failed: {results}"
    )
    assert len(results) == len(spans)

    traces = {label: spans[label].trace_id for label in
              ("checkout", "health", "browse10", "browse20", "browse30")}
    return DataSet(base_ns=base, spans=spans, traces=traces)
