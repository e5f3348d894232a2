"""The in-flight budget (`--max-inflight-bytes`): memory bounded by configuration, not by clients.

CnosDB (a cnosdb-lite process) is stopped with SIGSTOP, so every admitted request stays in flight; the rest
wait, then get the retryable answer of their protocol. Nothing acknowledged is lost when CnosDB comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import requests
from harness import cnosdb_lite_process, free_port

from cnosdb_jaeger_storage.proto import trace_service_pb2, trace_service_pb2_grpc

PROTOBUF = {"Content-Type": "application/x-protobuf"}
SERVER = str(Path(sys.executable).with_name("cnosdb-jaeger-storage"))


def export_request(spans: int, attribute_bytes: int = 200) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "admission"
    scope = rs.scope_spans.add()
    now = time.time_ns()
    for _ in range(spans):
        span = scope.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="op",
                               start_time_unix_nano=now, end_time_unix_nano=now + 1000)
        span.attributes.add(key="payload").value.string_value = "x" * attribute_bytes
    return request


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until the server answers 200: its ports are bound before it has reached CnosDB."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[tuple[str, str, int, subprocess.Popen[bytes]]]:
    """(OTLP/HTTP URL, OTLP/gRPC target, server PID, cnosdb-lite process) with a 64 KiB budget."""
    with cnosdb_lite_process(tmp_path / "lite") as lite_url:
        grpc_port, http_port, admin_port = free_port(), free_port(), free_port()
        server = subprocess.Popen([SERVER, "--cnosdb-url", lite_url, "--grpc-addr", f"127.0.0.1:{grpc_port}",
                                   "--otlp-grpc-addr=", "--otlp-http-addr", f"127.0.0.1:{http_port}",
                                   "--admin-addr", f"127.0.0.1:{admin_port}", "--max-inflight-bytes", "65536",
                                   "--cnosdb-timeout", "60"], stderr=subprocess.DEVNULL)
        try:
            wait_until_healthy(f"http://127.0.0.1:{admin_port}/healthz", server)  # CnosDB is stopped next
            lite_pid = int(subprocess.check_output(["pgrep", "-f", f"cnosdb-lite --data-dir {tmp_path / 'lite'}"])
                           .split()[0])
            yield f"http://127.0.0.1:{http_port}/v1/traces", f"127.0.0.1:{grpc_port}", server.pid, lite_pid
        finally:
            server.terminate()
            server.wait(30)


def test_beyond_the_budget_a_request_waits_then_is_told_to_retry(stalled) -> None:
    http_url, grpc_target, _, lite_pid = stalled
    first = export_request(200).SerializeToString()  # ~50 KB: most of the budget
    os.kill(lite_pid, signal.SIGSTOP)
    try:
        async def send() -> tuple[int, tuple[int, dict[str, str]], grpc.StatusCode]:
            async with aiohttp.ClientSession() as session:
                held = asyncio.ensure_future(session.post(http_url, data=first, headers=PROTOBUF))
                await asyncio.sleep(0.5)  # admitted, and waiting for the stopped CnosDB
                async with session.post(http_url, data=first, headers=PROTOBUF) as refused:
                    refused_http = (refused.status, dict(refused.headers))
                async with grpc.aio.insecure_channel(grpc_target) as channel:
                    try:
                        await trace_service_pb2_grpc.TraceServiceStub(channel).Export(export_request(200))
                        code = grpc.StatusCode.OK
                    except grpc.aio.AioRpcError as error:
                        code = error.code()
                os.kill(lite_pid, signal.SIGCONT)
                async with await held as response:
                    return response.status, refused_http, code

        held_status, (refused_status, refused_headers), grpc_code = asyncio.run(send())
    finally:
        os.kill(lite_pid, signal.SIGCONT)
    assert refused_status == 503 and refused_headers.get("Retry-After") == "1"
    assert grpc_code == grpc.StatusCode.UNAVAILABLE
    assert held_status == 200


def test_memory_stays_bounded_by_the_budget_with_300_clients(stalled) -> None:
    http_url, _, server_pid, lite_pid = stalled
    body = export_request(1000, 200).SerializeToString()  # ~250 KB: 300 of them are 75 MB of bodies
    before = rss_mb(server_pid)
    os.kill(lite_pid, signal.SIGSTOP)
    try:
        async def flood() -> tuple[list[int], float]:
            peak = before
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=300)) as session:
                async def one() -> int:
                    async with session.post(http_url, data=body, headers=PROTOBUF) as response:
                        return response.status

                tasks = [asyncio.ensure_future(one()) for _ in range(300)]
                deadline = time.monotonic() + 30
                while not all(t.done() for t in tasks) and time.monotonic() < deadline:
                    peak = max(peak, rss_mb(server_pid))
                    if time.monotonic() > deadline - 20:
                        os.kill(lite_pid, signal.SIGCONT)
                    await asyncio.sleep(0.05)
                return list(await asyncio.gather(*tasks)), peak

        statuses, peak = asyncio.run(flood())
    finally:
        os.kill(lite_pid, signal.SIGCONT)
    # One 250 KB request is admitted at a time (it is larger than the budget), and each waiting connection
    # holds at most 32 KB of read-ahead: measured 43 MB of growth. Without the budget: 485 MB.
    assert peak - before < 60, f"server RSS grew by {peak - before:.0f} MB"
    assert set(statuses) <= {200, 503} and 503 in statuses
