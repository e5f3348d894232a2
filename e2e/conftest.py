"""Fixtures of the end-to-end tests: the storage backend under test and the Jaeger binaries.

Backend selection (environment variable ``E2E_BACKEND``):

* ``cnosdb`` (default): ``cnosdb-lite`` + ``cnosdb-jaeger-storage`` from this repository.
* ``jaeger-remote-storage``: Jaeger's own ``remote-storage`` binary over memory.  Only meant for
  developing the harness itself; it proves the Jaeger side of the tests is right.

Jaeger binaries come from ``E2E_JAEGER_BIN_DIR`` (default
``${XDG_CACHE_HOME:-~/.cache}/cnosdb-jaeger-storage/jaeger-v1.76.0``), filled by ``make -C e2e all``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import (
    Process,
    default_jaeger_bin_dir,
    free_port,
    grpc_health_serving,
    http_ok,
    tcp_open,
)

E2E_BACKEND = os.environ.get("E2E_BACKEND", "cnosdb")
VENV_BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 60.0
# Log level of cnosdb-lite and cnosdb-jaeger-storage (their logs are shown when a test fails).
SERVER_LOG_LEVEL = os.environ.get("E2E_SERVER_LOG_LEVEL", "info")


def jaeger_binary(name: str) -> Path:
    path = default_jaeger_bin_dir() / name
    if not (path.is_file() and path.stat().st_mode & 0o111):
        pytest.fail(
            f"Jaeger binary {path} is missing. Build it with `make -C e2e all` "
            f"(or point E2E_JAEGER_BIN_DIR at a directory holding {name}).",
            pytrace=False,
        )
    return path


def venv_script(name: str) -> str:
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"console script {name!r} not found next to {sys.executable} nor on PATH", pytrace=False)
    return found


@dataclass
class Backend:
    kind: str
    grpc_addr: str  # v1 + v2 + OTLP gRPC, one port
    admin_url: str | None = None
    purge_url: str | None = None
    otlp_http_url: str | None = None
    query_http_url: str | None = None  # our own Jaeger query HTTP API (``--query-http-addr``), when asked for
    cnosdb_url: str | None = None  # the cnosdb-lite under our server (CnosDB's own HTTP API), backend ``cnosdb``
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()


def start_backend(workdir: Path, *, purge: bool = False, v1_streaming_writer: bool = True,
                  query_http: bool = False) -> Backend:
    """Start the storage backend selected by E2E_BACKEND on free loopback ports and wait for it.

    ``v1_streaming_writer=False`` starts our server with ``--v1-streaming-writer false``: its storage API v1
    capabilities then say ``streamingSpanWriter=false`` and a jaeger-collector 1.x writes with unary
    ``WriteSpan``.  Jaeger's own remote-storage ignores it (it offers no streaming writer at all).

    ``query_http=True`` also serves our own Jaeger query HTTP API (``--query-http-addr``) on a free port, as
    ``Backend.query_http_url``; it is ready when ``/api/services`` returns 200.  Jaeger's remote-storage has
    no such API: ``query_http_url`` stays ``None`` there.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if E2E_BACKEND == "jaeger-remote-storage":
        grpc_port, admin_port = free_port(), free_port()
        proc = Process(
            "jaeger-remote-storage",
            [jaeger_binary("remote-storage"), f"--grpc.host-port=127.0.0.1:{grpc_port}",
             f"--admin.http.host-port=127.0.0.1:{admin_port}"],
            workdir, env={"SPAN_STORAGE_TYPE": "memory"},
        ).start()
        backend = Backend("jaeger-remote-storage", f"127.0.0.1:{grpc_port}", processes=[proc])
        try:
            proc.wait_ready(lambda: grpc_health_serving(backend.grpc_addr), timeout=STARTUP_TIMEOUT,
                            what="gRPC health SERVING")
        except BaseException:
            backend.stop()
            raise
        return backend
    if E2E_BACKEND != "cnosdb":
        pytest.fail(f"unknown E2E_BACKEND={E2E_BACKEND!r} (use 'cnosdb' or 'jaeger-remote-storage')",
                    pytrace=False)

    db_port, grpc_port, otlp_http_port, admin_port = (free_port() for _ in range(4))
    backend = Backend("cnosdb", f"127.0.0.1:{grpc_port}", admin_url=f"http://127.0.0.1:{admin_port}",
                      otlp_http_url=f"http://127.0.0.1:{otlp_http_port}", cnosdb_url=f"http://127.0.0.1:{db_port}")
    try:
        lite = Process(
            "cnosdb-lite",
            [venv_script("cnosdb-lite"), "--data-dir", workdir / "cnosdb-data",
             "--http-addr", f"127.0.0.1:{db_port}", "--log-level", SERVER_LOG_LEVEL,
             "--quirks"],  # answers as a real CnosDB does, its defects included (docs/cnosdb-lite.md)
            workdir,
        ).start()
        backend.processes.append(lite)
        lite.wait_ready(lambda: tcp_open(db_port) and http_ok(f"http://127.0.0.1:{db_port}/api/v1/ping"),
                        timeout=STARTUP_TIMEOUT, what="GET /api/v1/ping 200")

        argv = [
            venv_script("cnosdb-jaeger-storage"),
            "--grpc-addr", f"127.0.0.1:{grpc_port}",
            "--otlp-grpc-addr", "",
            "--otlp-http-addr", f"127.0.0.1:{otlp_http_port}",
            "--admin-addr", f"127.0.0.1:{admin_port}",
            "--cnosdb-url", f"http://127.0.0.1:{db_port}",
            "--database", "jaeger",
            "--table", "jaeger_spans",
            "--log-level", SERVER_LOG_LEVEL,
        ]
        if not v1_streaming_writer:
            argv += ["--v1-streaming-writer", "false"]
        if purge:
            purge_port = free_port()
            argv += ["--purge-addr", f"127.0.0.1:{purge_port}"]
            backend.purge_url = f"http://127.0.0.1:{purge_port}/purge"
        if query_http:
            query_http_port = free_port()
            argv += ["--query-http-addr", f"127.0.0.1:{query_http_port}"]
            backend.query_http_url = f"http://127.0.0.1:{query_http_port}"
        server = Process("cnosdb-jaeger-storage", argv, workdir).start()
        backend.processes.append(server)
        server.wait_ready(lambda: grpc_health_serving(backend.grpc_addr), timeout=STARTUP_TIMEOUT,
                          what="gRPC health SERVING")
        server.wait_ready(lambda: http_ok(f"{backend.admin_url}/healthz"), timeout=STARTUP_TIMEOUT,
                          what="admin /healthz 200")
        if backend.query_http_url:
            server.wait_ready(lambda: http_ok(f"{backend.query_http_url}/api/services"), timeout=STARTUP_TIMEOUT,
                              what="query HTTP /api/services 200")
    except BaseException:
        backend.stop()
        raise
    return backend


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One fresh storage backend (empty database) per test module."""
    b = start_backend(tmp_path_factory.mktemp("backend"))
    yield b
    b.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On any failure, attach the tail of every running subprocess's log to the report."""
    report = yield
    if report.failed:
        for proc in list(Process.registry):
            state = "running" if proc.alive else f"exited rc={proc.proc.returncode if proc.proc else None}"
            report.sections.append((f"log of {proc.name} ({state}, {proc.log_path})", proc.log_tail()))
    return report
