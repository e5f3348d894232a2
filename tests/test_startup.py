"""What an operator sees when the server cannot start: one line naming the option, a non-zero exit, no traceback;
and nothing is opened (no data directory touched, no port taken) before every port is known to be free."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from harness import cnosdb_lite_process, free_port, running_server, server_config

from cnosdb_lite import clikit

SERVER = str(Path(sys.executable).with_name("cnosdb-jaeger-storage"))


def run_server(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SERVER, "--otlp-grpc-addr=", "--otlp-http-addr=", "--admin-addr=", *args],
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("cnosdb-jaeger-storage: "), result.stderr
    return lines[-1]


def test_a_grpc_port_of_a_running_server_is_not_shared(tmp_path: Path) -> None:
    """gRPC's SO_REUSEPORT would let a second instance listen too and split the clients between the two."""
    with running_server(server_config(tmp_path / "first")) as first:
        port = first.port("grpc")
        result = run_server("--grpc-addr", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "second"))
    line = one_line_error(result)
    assert f"--grpc-addr 127.0.0.1:{port}: cannot listen there" in line
    assert not (tmp_path / "second").exists()  # refused before anything was opened


def test_a_busy_http_port_is_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_server("--grpc-addr", f"127.0.0.1:{free_port()}", "--otlp-http-addr", f"127.0.0.1:{port}",
                            "--data-dir", str(tmp_path / "data"))
    line = one_line_error(result)
    assert f"--otlp-http-addr 127.0.0.1:{port}: cannot listen there (Address already in use)" in line
    assert not (tmp_path / "data").exists()


def test_a_data_dir_that_is_a_file_names_the_option(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = run_server("--grpc-addr", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "file"))
    assert one_line_error(result).endswith(f"--data-dir {tmp_path / 'file'}: not a directory; point --data-dir "
                                           "at a directory")


def test_wrong_cnosdb_credentials_are_one_line(tmp_path: Path) -> None:
    with cnosdb_lite_process(tmp_path / "lite", "--auth-enabled", "--user", "root", "--password", "right") as url:
        result = run_server("--grpc-addr", f"127.0.0.1:{free_port()}", "--cnosdb-url", url,
                            "--cnosdb-password", "wrong")
    line = one_line_error(result)
    assert line.startswith(f"cnosdb-jaeger-storage: --cnosdb-user/--cnosdb-password: CnosDB at {url} refused them")


def test_an_unreachable_cnosdb_is_awaited_with_health_saying_so_then_one_line(tmp_path: Path) -> None:
    admin = free_port()
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen([SERVER, "--grpc-addr", f"127.0.0.1:{free_port()}", "--otlp-grpc-addr=",
                                "--otlp-http-addr=", "--admin-addr", f"127.0.0.1:{admin}", "--cnosdb-url", url,
                                "--cnosdb-wait", "3"], stderr=subprocess.PIPE, text=True)
    try:
        health = None
        deadline = time.monotonic() + 10
        while health is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=2)
            except urllib.error.HTTPError as error:
                health = (error.code, error.read())
            except OSError:
                time.sleep(0.05)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert health == (503, b'{"status": "waiting for CnosDB"}')
    assert process.returncode == 1 and "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    waiting = [line for line in lines if "waiting for CnosDB" in line]
    assert 2 <= len(waiting) <= 5
    assert all(f"{url}: CnosDB unreachable" in line and "retrying_for=" in line for line in waiting)
    assert lines[-1].startswith(f"cnosdb-jaeger-storage: --cnosdb-url {url}: CnosDB did not answer for 3 s (")
    assert lines[-1].endswith("); start it or point --cnosdb-url at it")


@pytest.mark.parametrize("url", ["not-a-url", "127.0.0.1:8902"])
def test_a_bad_cnosdb_url_is_refused_before_anything_starts(url: str) -> None:
    result = run_server("--cnosdb-url", url, timeout=10)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"cnosdb-jaeger-storage: --cnosdb-url: {url!r} is not an http:// or https:// "
                                     "URL such as http://127.0.0.1:8902")


def test_version() -> None:
    result = subprocess.run([SERVER, "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("cnosdb-jaeger-storage 0.")


@pytest.mark.parametrize(("options", "event_loop"), [([], "uvloop"), (["--event-loop", "asyncio"], "asyncio")])
def test_the_startup_line_names_every_listener_the_storage_and_the_event_loop(
        tmp_path: Path, options: list[str], event_loop: str) -> None:
    grpc_port, http_port = free_port(), free_port()
    process = subprocess.Popen([SERVER, "--grpc-addr", f"127.0.0.1:{grpc_port}", "--otlp-grpc-addr=",
                                "--otlp-http-addr", f"127.0.0.1:{http_port}", "--admin-addr=",
                                "--data-dir", str(tmp_path / "data"), *options], stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
    finally:
        process.terminate()
        process.wait(30)
    assert 'msg="serving ' in line
    for part in (f"grpc=127.0.0.1:{grpc_port}", "otlp_grpc=off", f"otlp_http=127.0.0.1:{http_port}",
                 "query_http=off", "admin=off", f"storage=embedded-cnosdb-lite data_dir={tmp_path / 'data'}",
                 "tenant=cnosdb database=jaeger table=jaeger_spans", f"event_loop={event_loop}"):
        assert part in line


def test_a_data_dir_in_use_by_another_process_is_one_line(tmp_path: Path) -> None:
    with cnosdb_lite_process(tmp_path / "data"):
        result = run_server("--grpc-addr", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"))
    line = one_line_error(result)
    assert line.startswith(f"cnosdb-jaeger-storage: --data-dir {tmp_path / 'data'}: data directory ")
    assert "is in use by process" in line


def test_a_started_server_freezes_start_up_objects_and_collects_the_young_generation_less_often() -> None:
    script = ("import gc; from cnosdb_lite import clikit; clikit.tune_gc(); "
              "print(gc.get_threshold()[0], gc.get_freeze_count() > 1000)")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert found == [str(clikit.YOUNG_GENERATION_THRESHOLD), "True"]

