"""The `cnosdb-lite` command: options, environment twins, and durability across a SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cnosdb_lite import cli

from .lite_client import Client, basic

REPO = Path(__file__).resolve().parents[2]
OPTIONS = ["--data-dir", "--http-addr", "--user", "--password", "--auth-enabled", "--quirks", "--memtable-size",
           "--log-level"]
ENV_TWINS = ["CNOSDB_LITE_DATA_DIR", "CNOSDB_LITE_HTTP_ADDR", "CNOSDB_LITE_USER", "CNOSDB_LITE_PASSWORD",
             "CNOSDB_LITE_AUTH_ENABLED", "CNOSDB_LITE_QUIRKS", "CNOSDB_LITE_MEMTABLE_SIZE", "CNOSDB_LITE_LOG_LEVEL"]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch):
    for name in [*ENV_TWINS, "XDG_DATA_HOME"]:
        monkeypatch.delenv(name, raising=False)


def test_help_documents_every_option_and_its_environment_variable(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in OPTIONS:
        assert option in text
    for twin in ENV_TWINS:
        assert twin in text


def test_help_never_shows_a_password_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("CNOSDB_LITE_PASSWORD", "top-secret-value")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    assert "top-secret-value" not in capsys.readouterr().out


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = cli.build_parser().parse_args([])
    assert args.data_dir == tmp_path / ".local" / "share" / "cnosdb-lite"
    assert args.http_addr == ("127.0.0.1", 8902)
    assert (args.user, args.password, args.auth_enabled, args.log_level) == ("root", "", False, "warning")
    assert args.quirks is False
    assert args.memtable_size == 64


def test_memtable_size_from_flag_or_environment(monkeypatch, capsys):
    assert cli.build_parser().parse_args(["--memtable-size", "16"]).memtable_size == 16
    monkeypatch.setenv("CNOSDB_LITE_MEMTABLE_SIZE", "8")
    assert cli.build_parser().parse_args([]).memtable_size == 8
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--memtable-size", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_xdg_data_home_moves_the_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert cli.build_parser().parse_args([]).data_dir == tmp_path / "cnosdb-lite"


@pytest.mark.parametrize(
    ("env", "argv", "attribute", "expected"),
    [
        ({"CNOSDB_LITE_HTTP_ADDR": "0.0.0.0:9000"}, [], "http_addr", ("0.0.0.0", 9000)),
        ({"CNOSDB_LITE_HTTP_ADDR": "0.0.0.0:9000"}, ["--http-addr", "[::1]:1"], "http_addr", ("::1", 1)),
        ({"CNOSDB_LITE_USER": "alice"}, [], "user", "alice"),
        ({"CNOSDB_LITE_USER": "alice"}, ["--user", "bob"], "user", "bob"),
        ({"CNOSDB_LITE_PASSWORD": "pw"}, [], "password", "pw"),
        ({"CNOSDB_LITE_AUTH_ENABLED": "true"}, [], "auth_enabled", True),
        ({"CNOSDB_LITE_AUTH_ENABLED": "0"}, [], "auth_enabled", False),
        ({"CNOSDB_LITE_AUTH_ENABLED": "0"}, ["--auth-enabled"], "auth_enabled", True),
        ({"CNOSDB_LITE_QUIRKS": "1"}, [], "quirks", True),
        ({"CNOSDB_LITE_QUIRKS": "false"}, ["--quirks"], "quirks", True),
        ({"CNOSDB_LITE_LOG_LEVEL": "DEBUG"}, [], "log_level", "debug"),
        ({"CNOSDB_LITE_DATA_DIR": "/srv/x"}, [], "data_dir", Path("/srv/x")),
        ({"CNOSDB_LITE_DATA_DIR": "/srv/x"}, ["--data-dir", "/srv/y"], "data_dir", Path("/srv/y")),
    ],
    ids=["addr-env", "addr-flag-wins", "user-env", "user-flag-wins", "password-env", "auth-env",
         "auth-env-false", "auth-flag-wins", "quirks-env", "quirks-flag-wins", "log-level-env", "data-dir-env",
         "data-dir-flag-wins"],
)
def test_flag_then_environment_then_default(monkeypatch, env, argv, attribute, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert getattr(cli.build_parser().parse_args(argv), attribute) == expected


@pytest.mark.parametrize("addr", ["8902", "host:", "host:port", "h:70000"])
def test_bad_http_addr_is_rejected(addr, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--http-addr", addr])
    assert exit_info.value.code == 2
    assert "--http-addr" in capsys.readouterr().err


def test_bad_auth_enabled_environment_value(monkeypatch):
    monkeypatch.setenv("CNOSDB_LITE_AUTH_ENABLED", "maybe")
    with pytest.raises(SystemExit, match="CNOSDB_LITE_AUTH_ENABLED"):
        cli.build_parser()


# -- the real process --------------------------------------------------------------------------------------


class LiteProcess:
    def __init__(self, data_dir: Path, *extra: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cnosdb_lite.cli", "--data-dir", str(data_dir),
             "--http-addr", "127.0.0.1:0", "--log-level", "info", *extra],
            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        self.url = self._wait_for_url()
        self.client = Client(self.url)

    def _wait_for_url(self) -> str:
        seen = []
        for line in self.proc.stderr:
            seen.append(line)
            match = re.search(r"event=listening url=(\S+)", line)
            if match:
                return match.group(1)
        raise AssertionError("cnosdb-lite exited before listening:\n" + "".join(seen))

    def signal(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self.proc.stderr.close()
        return code


def test_write_sigkill_restart_reads_everything_back(tmp_path):
    data_dir = tmp_path / "data"
    first = LiteProcess(data_dir)
    try:
        assert first.client.request("GET", "/api/v1/ping", auth=None).status == 200
        first.client.ok_sql("CREATE DATABASE durable")
        lines = "".join(f"m,host=h{i % 3} v={i},s=\"row {i}\" {1690510331000000000 + i}\n" for i in range(50))
        assert first.client.write(lines, db="durable").status == 200
        assert first.client.write("m,host=late v=999 1690510332000000000", db="durable").status == 200
    finally:
        assert first.signal(signal.SIGKILL) == -signal.SIGKILL

    second = LiteProcess(data_dir)
    try:
        reply = second.client.ok_sql("SELECT host, v, s FROM m ORDER BY time", db="durable")
        got = json.loads(reply.body)
        expected = [{"host": f"h{i % 3}", "v": float(i), "s": f"row {i}"} for i in range(50)]
        assert got == [*expected, {"host": "late", "v": 999.0}]
        databases = json.loads(second.client.ok_sql("SHOW DATABASES").body)
        assert {"database_name": "durable"} in databases
    finally:
        assert second.signal(signal.SIGTERM) == 0


def test_sigterm_and_sigint_stop_cleanly(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = LiteProcess(tmp_path / "data")
        assert process.client.request("GET", "/api/v1/ping", auth=None).status == 200
        assert process.signal(sig) == 0, f"exit status after {sig!r}"


def test_auth_enabled_process(tmp_path):
    process = LiteProcess(tmp_path / "data", "--user", "alice", "--password", "pw", "--auth-enabled")
    try:
        assert process.client.request("POST", "/api/v1/sql", "SELECT 1").status == 422
        assert process.client.request("POST", "/api/v1/sql", "SELECT 1", auth=basic("alice", "pw")).status == 200
    finally:
        process.signal(signal.SIGTERM)


def test_version() -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("cnosdb-lite")), "--version"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("cnosdb-lite ")
