"""Fault suite: kill -9 and SIGSTOP of the plugin server and of cnosdb-lite under OTLP/HTTP load, and two
cnosdb-lite processes on one data directory.  The invariant every case checks: each span of each request
answered 200 is stored (read back from cnosdb-lite's SQL API by span ID), i.e. 0 acknowledged spans lost.

Everything runs as real processes on 127.0.0.1 (`cnosdb-jaeger-storage --cnosdb-url` in front of a separate
`cnosdb-lite`); loops are bounded in count and time and every process is stopped in `finally`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnosdb_jaeger_storage.model.span_rows import SPAN_ID
from cnosdb_jaeger_storage.proto import trace_pb2, trace_service_pb2

BIN = Path(sys.executable).parent
SPANS_PER_REQUEST = 4
LOAD_THREADS = 3
MAX_REQUESTS = 3000                 # per load run, across threads
START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
            if reply.status == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)         # a stopped process cannot act on SIGTERM
        proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


class Lite:
    """A `cnosdb-lite` process on a fixed port, restartable on the same data directory and port."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "cnosdb-lite"), "--data-dir", str(self.data_dir), "--http-addr", f"127.0.0.1:{self.port}"],
                stdout=log, stderr=log)
        _wait_http(self.url + "/api/v1/ping", self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def span_ids(self) -> set[str]:
        request = urllib.request.Request(
            self.url + "/api/v1/sql?tenant=cnosdb&db=jaeger",
            data=f'SELECT "{SPAN_ID}" AS id FROM jaeger_spans'.encode(),
            headers={"Accept": "application/json", "Authorization": "Basic cm9vdDo="})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return {row["id"] for row in json.loads(reply.read())}


class Plugin:
    """A `cnosdb-jaeger-storage` process writing to `lite`; OTLP/HTTP and admin on fixed ports."""

    def __init__(self, lite: Lite, log: Path, *extra: str) -> None:
        self.lite = lite
        self.http_port, self.admin_port = _free_port(), _free_port()
        self.otlp_url = f"http://127.0.0.1:{self.http_port}/v1/traces"
        self.log = log
        self.extra = extra
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        flags = ["--grpc-addr", f"127.0.0.1:{_free_port()}", "--otlp-grpc-addr=",
                 "--otlp-http-addr", f"127.0.0.1:{self.http_port}", "--admin-addr", f"127.0.0.1:{self.admin_port}",
                 "--cnosdb-url", self.lite.url, "--data-dir", str(self.log.parent / "unused"), "--ttl", "30d",
                 *self.extra]
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([str(BIN / "cnosdb-jaeger-storage"), *flags], stdout=log, stderr=log)
        _wait_http(f"http://127.0.0.1:{self.admin_port}/healthz", self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


def _span_id(request_id: int, k: int) -> int:
    return request_id * 16 + k


def _export(request_id: int) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    attribute = rs.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "fault-suite"
    scope = rs.scope_spans.add()
    now = time.time_ns()
    for k in range(SPANS_PER_REQUEST):
        span = scope.spans.add()
        span.trace_id = (0xFA17).to_bytes(8, "big") + request_id.to_bytes(8, "big")
        span.span_id = _span_id(request_id, k).to_bytes(8, "big")
        span.name = f"op-{k}"
        span.kind = trace_pb2.Span.SPAN_KIND_SERVER
        span.start_time_unix_nano, span.end_time_unix_nano = now, now + 1000
    return request.SerializeToString()


class Load:
    """Threads posting small OTLP requests with distinct span IDs; `acked` holds the ids answered 200."""

    def __init__(self, url: str, first_id: int = 1) -> None:
        self.url = url
        self.acked: set[int] = set()
        self.errors = 0
        self._next = first_id
        self._end = first_id + MAX_REQUESTS
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_THREADS)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _take(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._next >= self._end:
                return None
            self._next += 1
            return self._next - 1

    def _run(self) -> None:
        while (request_id := self._take()) is not None:
            post = urllib.request.Request(self.url, data=_export(request_id),
                                          headers={"Content-Type": "application/x-protobuf"})
            try:
                with urllib.request.urlopen(post, timeout=20) as reply:
                    ok = reply.status == 200
            except (OSError, urllib.error.HTTPError):
                ok = False
            with self._lock:
                if ok:
                    self.acked.add(request_id)
                else:
                    self.errors += 1
            if not ok:
                time.sleep(0.05)

    @property
    def next_id(self) -> int:
        return self._end

    def wait_acked(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.acked) >= count, f"only {len(self.acked)} requests acknowledged, {self.errors} errors"


def _assert_all_stored(lite: Lite, *loads: Load) -> int:
    stored = lite.span_ids()
    expected = {f"{_span_id(r, k):016x}" for load in loads for r in load.acked for k in range(SPANS_PER_REQUEST)}
    lost = expected - stored
    assert not lost, f"{len(lost)} acknowledged spans lost of {len(expected)}"
    return len(expected)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Lite]:
    lite = Lite(tmp_path / "data", tmp_path / "cnosdb-lite.log")
    lite.start()
    try:
        yield lite
    finally:
        lite.stop()


def test_kill9_plugin_server_under_load(lite: Lite, tmp_path: Path) -> None:
    plugin = Plugin(lite, tmp_path / "plugin.log")
    plugin.start()
    try:
        with Load(plugin.otlp_url) as before:
            before.wait_acked(40)
            _kill9(plugin.proc)
        plugin.start()
        with Load(plugin.otlp_url, before.next_id) as after:
            after.wait_acked(10)
        assert _assert_all_stored(lite, before, after) >= 50 * SPANS_PER_REQUEST
    finally:
        plugin.stop()


def test_kill9_cnosdb_lite_under_load(lite: Lite, tmp_path: Path) -> None:
    plugin = Plugin(lite, tmp_path / "plugin.log")
    plugin.start()
    try:
        with Load(plugin.otlp_url) as load:
            load.wait_acked(40)
            _kill9(lite.proc)
            acked_at_kill = len(load.acked)
            time.sleep(0.3)
            lite.start()                                    # same data directory, same port
            load.wait_acked(acked_at_kill + 20, timeout=20)
        assert _assert_all_stored(lite, load) >= 60 * SPANS_PER_REQUEST
        lite.stop()                                         # and once more from a clean restart
        lite.start()
        _assert_all_stored(lite, load)
    finally:
        plugin.stop()


def test_sigstop_cnosdb_lite_under_load(lite: Lite, tmp_path: Path) -> None:
    plugin = Plugin(lite, tmp_path / "plugin.log", "--cnosdb-timeout", "1", "--write-retries", "2")
    plugin.start()
    try:
        with Load(plugin.otlp_url) as load:
            load.wait_acked(40)
            lite.proc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(3)
            finally:
                lite.proc.send_signal(signal.SIGCONT)
            acked_at_resume = len(load.acked)
            load.wait_acked(acked_at_resume + 20, timeout=20)
        # Clients waited (the writer retries a timed-out write once the time-out has passed again) or got
        # errors; whichever, every span acknowledged to them is stored.
        _assert_all_stored(lite, load)
    finally:
        plugin.stop()


def _write_rows(url: str, first: int, count: int) -> None:
    lines = "\n".join(f"m,k=r{i} v={i}i {1_700_000_000_000_000_000 + i}" for i in range(first, first + count))
    request = urllib.request.Request(url + "/api/v1/write?tenant=cnosdb&db=public", data=lines.encode(),
                                     headers={"Authorization": "Basic cm9vdDo="})
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200


def _count_rows(url: str) -> int:
    request = urllib.request.Request(url + "/api/v1/sql?tenant=cnosdb&db=public", data=b"SELECT count(*) AS n FROM m",
                                     headers={"Accept": "application/json", "Authorization": "Basic cm9vdDo="})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())[0]["n"]


def test_second_cnosdb_lite_on_one_data_dir_refuses(lite: Lite, tmp_path: Path) -> None:
    _write_rows(lite.url, 0, 100)
    wal = sorted((lite.data_dir / "wal").iterdir())
    second = subprocess.run([str(BIN / "cnosdb-lite"), "--data-dir", str(lite.data_dir),
                             "--http-addr", f"127.0.0.1:{_free_port()}"],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    [line] = second.stderr.splitlines()
    assert str(lite.data_dir) in line and f"process {lite.proc.pid}" in line, line
    assert sorted((lite.data_dir / "wal").iterdir()) == wal
    _write_rows(lite.url, 100, 100)                         # A still serves, and still logs durably
    assert _count_rows(lite.url) == 200
    lite.stop()
    assert lite.proc.returncode == 0
    lite.start()
    assert _count_rows(lite.url) == 200
    assert os.path.exists(lite.data_dir / "LOCK")
