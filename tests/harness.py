"""Runs the real server (gRPC and HTTP on real loopback sockets) for tests, on a loop of its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc

from cnosdb_jaeger_storage.config import Config
from cnosdb_jaeger_storage.server import Server, start
from cnosdb_lite import clikit

T = TypeVar("T")


@dataclasses.dataclass
class RunningServer:
    server: Server
    loop: asyncio.AbstractEventLoop

    def port(self, name: str) -> int:
        return self.server.ports[name]

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.port('grpc')}"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.grpc_target, options=[("grpc.max_receive_message_length", 64 << 20)])

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


# Set, the server of a test uses this CnosDB (a new database per server) instead of the embedded cnosdb-lite:
# `TEST_CNOSDB_URL=http://127.0.0.1:8902 make test PYTEST_ARGS=tests/test_conformance_v1.py` checks a real CnosDB.
TEST_CNOSDB_URL = os.environ.get("TEST_CNOSDB_URL", "")


def server_config(data_dir: Path, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(grpc_addr="127.0.0.1:0", otlp_grpc_addr="", otlp_http_addr="127.0.0.1:0",
                                  admin_addr="127.0.0.1:0", data_dir=str(data_dir),
                                  ttl="30d")
    if TEST_CNOSDB_URL:
        values.update(cnosdb_url=TEST_CNOSDB_URL, database=f"test_{uuid.uuid4().hex[:12]}", cnosdb_timeout=300)
    values.update(overrides)
    return Config(**values)


@contextlib.contextmanager
def running_server(config: Config) -> Iterator[RunningServer]:
    loop = clikit.event_loop_factory(config.event_loop)()  # as the command runs it: uvloop where installed
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        server = asyncio.run_coroutine_threadsafe(start(config), loop).result(60)
        try:
            yield RunningServer(server, loop)
        finally:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def cnosdb_lite_process(data_dir: Path, *extra: str) -> Iterator[str]:
    """A `cnosdb-lite` server in its own process; yields its URL."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("cnosdb-lite")), "--data-dir", str(data_dir),
               "--http-addr", f"127.0.0.1:{port}", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Until something listens on `port`; RuntimeError if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited: {process.stderr.read().decode() if process.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")
