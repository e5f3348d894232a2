"""Configuration: every option is a flag and an environment variable; flag > environment > default; bad values
are refused with a message that names the option."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnosdb_jaeger_storage.config import (
    ENV_PREFIX,
    Config,
    ConfigError,
    build_parser,
    load_config,
)

FIELDS = [f.name for f in dataclasses.fields(Config)]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No option of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    yield


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env(name: str) -> str:
    return ENV_PREFIX + name.upper()


# A valid value for every option, unlike its default: (flag/env text, value it loads as).
SAMPLES: dict[str, tuple[str, object]] = {
    "grpc_addr": ("127.0.0.1:7001", "127.0.0.1:7001"),
    "otlp_grpc_addr": (":7002", ":7002"),
    "otlp_http_addr": ("[::1]:7003", "[::1]:7003"),
    "query_http_addr": ("0.0.0.0:16686", "0.0.0.0:16686"),
    "admin_addr": ("localhost:7004", "localhost:7004"),
    "cnosdb_url": ("http://cnosdb:8902", "http://cnosdb:8902"),
    "cnosdb_user": ("admin", "admin"),
    "cnosdb_password": ("p@ss word", "p@ss word"),
    "cnosdb_timeout": ("120", 120.0),
    "cnosdb_wait": ("5", 5.0),
    "tenant": ("t1", "t1"),
    "database": ("traces", "traces"),
    "table": ("spans", "spans"),
    "ttl": ("30d", "30d"),
    "data_dir": ("/var/lib/cjs", "/var/lib/cjs"),
    "memtable_size": ("16", 16),
    "batch_size": ("100", 100),
    "batch_delay": ("0.25", 0.25),
    "max_writes_in_flight": ("4", 4),
    "cnosdb_compression": ("gzip", "gzip"),
    "max_pending_spans": ("10000", 10000),
    "write_retries": ("3", 3),
    "max_request_bytes": ("1024", 1024),
    "max_inflight_bytes": ("4096", 4096),
    "receiver_user": ("otel", "otel"),
    "receiver_password": ("secret", "secret"),
    "tenant_header": ("x-scope-orgid", "x-scope-orgid"),
    "max_tables": ("4", 4),
    "max_span_attributes": ("64", 64),
    "max_attribute_columns": ("500", 500),
    "tenants": ("acme,beta=cnosdb/beta_db", "acme,beta=cnosdb/beta_db"),
    "purge_addr": ("127.0.0.1:7005", "127.0.0.1:7005"),
    "v1_streaming_writer": ("false", False),
    "log_level": ("debug", "debug"),
    "event_loop": ("asyncio", "asyncio"),
}
# Another valid value, to tell a flag from an environment variable.
OTHER = {"batch_size": ("200", 200), "memtable_size": ("32", 32), "max_tables": ("5", 5),
         "max_inflight_bytes": ("8192", 8192),
         "max_span_attributes": ("32", 32), "max_attribute_columns": ("300", 300),
         "cnosdb_wait": ("7", 7.0), "cnosdb_timeout": ("90", 90.0), "batch_delay": ("0.5", 0.5),
         "max_writes_in_flight": ("3", 3), "cnosdb_compression": ("none", "none"),
         "max_pending_spans": ("20000", 20000),
         "write_retries": ("4", 4), "max_request_bytes": ("2048", 2048), "log_level": ("error", "error"),
         "ttl": ("12h", "12h"), "grpc_addr": (":7011", ":7011"), "otlp_grpc_addr": (":7012", ":7012"),
         "otlp_http_addr": (":7013", ":7013"), "query_http_addr": (":7014", ":7014"),
         "admin_addr": (":7015", ":7015"), "purge_addr": (":7016", ":7016"), "v1_streaming_writer": ("true", True),
         "event_loop": ("uvloop", "uvloop")}


def test_every_option_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(FIELDS)
    assert all(SAMPLES[name][1] != getattr(Config(), name) for name in FIELDS)


def test_defaults() -> None:
    config = load_config([], {"XDG_DATA_HOME": "/xdg"})
    assert config == dataclasses.replace(Config(), data_dir="/xdg/cnosdb-jaeger-storage")
    assert (config.grpc_addr, config.otlp_grpc_addr, config.otlp_http_addr, config.admin_addr) == (
        ":17271", ":4317", ":4318", ":17270")
    assert (config.query_http_addr, config.cnosdb_url, config.purge_addr, config.tenants) == ("", "", "", "")
    assert (config.tenant, config.database, config.table, config.ttl) == ("cnosdb", "jaeger", "jaeger_spans", "7d")
    assert config.embedded


def _other(name: str) -> tuple[str, object]:
    if name in OTHER:
        return OTHER[name]
    text = SAMPLES[name][0] + "-flag" if name != "data_dir" else "/srv/flag"
    return text, text


@pytest.mark.parametrize("name", FIELDS)
def test_environment_variable_sets_the_option(name: str) -> None:
    text, value = SAMPLES[name]
    assert getattr(load_config([], {env(name): text}), name) == value


@pytest.mark.parametrize("name", FIELDS)
def test_flag_sets_the_option(name: str) -> None:
    text, value = SAMPLES[name]
    assert getattr(load_config([flag(name), text], {}), name) == value


@pytest.mark.parametrize("name", FIELDS)
def test_flag_wins_over_environment(name: str) -> None:
    env_text, _ = SAMPLES[name]
    flag_text, flag_value = _other(name)
    assert getattr(load_config([flag(name), flag_text], {env(name): env_text}), name) == flag_value


def test_flag_equals_form_and_empty_values() -> None:
    config = load_config(["--otlp-grpc-addr=", "--batch-size=7", "--max-pending-spans=7"],
                         {env("otlp_http_addr"): "", env("query_http_addr"): ":16686"})
    assert (config.otlp_grpc_addr, config.otlp_http_addr, config.query_http_addr) == ("", "", ":16686")
    assert (config.batch_size, config.max_pending_spans) == (7, 7)


def test_environment_names_are_exact() -> None:
    """Only the prefixed upper-case name counts; a look-alike is ignored."""
    config = load_config([], {"cnosdb_jaeger_table": "x", "CNOSDB_JAEGER_TABLES": "y", "TABLE": "z"})
    assert config.table == "jaeger_spans"


@pytest.mark.parametrize(("environ", "message"), [
    ({"CNOSDB_JAEGER_BATCH_SIZE": "many"}, "CNOSDB_JAEGER_BATCH_SIZE: cannot read 'many' as int"),
    ({"CNOSDB_JAEGER_BATCH_DELAY": "1s"}, "CNOSDB_JAEGER_BATCH_DELAY: cannot read '1s' as float"),
    ({"CNOSDB_JAEGER_MAX_REQUEST_BYTES": ""}, "CNOSDB_JAEGER_MAX_REQUEST_BYTES: cannot read '' as int"),
    ({"CNOSDB_JAEGER_BATCH_SIZE": "0"}, "--batch-size must be at least 1"),
    ({"CNOSDB_JAEGER_BATCH_SIZE": "10", "CNOSDB_JAEGER_MAX_PENDING_SPANS": "5"},
     "--max-pending-spans must be at least --batch-size"),
    ({"CNOSDB_JAEGER_WRITE_RETRIES": "0"}, "--write-retries must be at least 1"),
    ({"CNOSDB_JAEGER_BATCH_DELAY": "-1"}, "--batch-delay must be at least 0 seconds"),
    ({"CNOSDB_JAEGER_MAX_WRITES_IN_FLIGHT": "0"}, "--max-writes-in-flight must be at least 1"),
    ({"CNOSDB_JAEGER_MEMTABLE_SIZE": "0"}, "--memtable-size must be at least 1 MiB"),
    ({"CNOSDB_JAEGER_CNOSDB_COMPRESSION": "zstd"}, "--cnosdb-compression must be auto, gzip or none"),
    ({"CNOSDB_JAEGER_MAX_SPAN_ATTRIBUTES": "-1"}, "--max-span-attributes must be at least 0"),
    ({"CNOSDB_JAEGER_MAX_ATTRIBUTE_COLUMNS": "-1"}, "--max-attribute-columns must be at least 0"),
    ({"CNOSDB_JAEGER_CNOSDB_TIMEOUT": "0"}, "--cnosdb-timeout must be more than 0 seconds"),
    ({"CNOSDB_JAEGER_CNOSDB_URL": "not-a-url"},
     "--cnosdb-url: 'not-a-url' is not an http:// or https:// URL such as http://127.0.0.1:8902"),
    ({"CNOSDB_JAEGER_CNOSDB_URL": "ftp://cnosdb:8902"},
     "--cnosdb-url: 'ftp://cnosdb:8902' is not an http:// or https:// URL such as http://127.0.0.1:8902"),
    ({"CNOSDB_JAEGER_LOG_LEVEL": "verbose"}, "--log-level must be debug, info, warning or error"),
    ({"CNOSDB_JAEGER_EVENT_LOOP": "trio"}, "--event-loop: event loop must be one of auto, uvloop, asyncio, not 'trio'"),
    ({"CNOSDB_JAEGER_GRPC_ADDR": ""}, "--grpc-addr must not be empty"),
    ({"CNOSDB_JAEGER_GRPC_ADDR": "localhost"}, "--grpc-addr: 'localhost' is not host:port"),
    ({"CNOSDB_JAEGER_OTLP_HTTP_ADDR": "host:http"}, "--otlp-http-addr: 'host:http' is not host:port"),
    ({"CNOSDB_JAEGER_QUERY_HTTP_ADDR": ":99999"}, "--query-http-addr: ':99999' is not host:port"),
    ({"CNOSDB_JAEGER_ADMIN_ADDR": "1.2.3.4"}, "--admin-addr: '1.2.3.4' is not host:port"),
    ({"CNOSDB_JAEGER_PURGE_ADDR": ":-1"}, "--purge-addr: ':-1' is not host:port"),
    ({"CNOSDB_JAEGER_OTLP_GRPC_ADDR": "nope"}, "--otlp-grpc-addr: 'nope' is not host:port"),
    ({"CNOSDB_JAEGER_TTL": "7x"}, "--ttl: '7x' is not a retention such as '7d', '12h' or 'INF'"),
    ({"CNOSDB_JAEGER_TTL": "0d"}, "--ttl: '0d' is not a retention such as '7d', '12h' or 'INF'"),
], ids=["int", "float", "empty-int", "batch-size", "pending-below-batch", "retries", "batch-delay",
        "writes-in-flight", "memtable-size", "compression", "span-attributes",
        "attribute-columns", "timeout", "url", "url-scheme",
        "log-level", "event-loop", "empty-grpc", "grpc-no-port", "named-port", "port-too-large", "admin-no-port",
        "negative-port", "otlp-grpc", "ttl-unit", "ttl-zero"])
def test_bad_values_are_refused_naming_the_option(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config([], environ)
    assert str(error.value) == message


@pytest.mark.parametrize(("text", "value"), [("true", True), ("TRUE", True), ("1", True), ("yes", True),
                                             ("false", False), ("0", False), ("No", False)])
def test_boolean_options(text: str, value: bool) -> None:
    assert load_config([], {env("v1_streaming_writer"): text}).v1_streaming_writer is value
    assert load_config(["--v1-streaming-writer", text], {}).v1_streaming_writer is value


def test_bad_boolean_is_refused_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as error:
        load_config([], {env("v1_streaming_writer"): "maybe"})
    assert str(error.value) == "CNOSDB_JAEGER_V1_STREAMING_WRITER: cannot read 'maybe' as bool"
    with pytest.raises(SystemExit):
        load_config(["--v1-streaming-writer", "maybe"], {})
    err = capsys.readouterr().err
    assert "argument --v1-streaming-writer: " in err and "'maybe'" in err


@pytest.mark.parametrize("ttl", ["7d", "INF", "inf", "12h", "90", "2w", "30 days"])
def test_valid_ttls(ttl: str) -> None:
    assert load_config(["--ttl", ttl], {}).ttl == ttl


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
    (["--batch-delay", "soon"], "argument --batch-delay: invalid float value: 'soon'"),
    (["--no-such-option", "1"], "unrecognized arguments: --no-such-option 1"),
], ids=["int", "float", "unknown"])
def test_bad_flags_exit_2_naming_the_flag(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        load_config(argv, {})
    assert exit_.value.code == 2
    assert fragment in capsys.readouterr().err


def _help_text() -> str:
    result = subprocess.run([sys.executable, "-m", "cnosdb_jaeger_storage.cli", "--help"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "COLUMNS": "100"}, check=False)
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())  # argparse wraps lines wherever it likes


def test_help_lists_every_option_with_its_environment_twin() -> None:
    text = _help_text()
    assert text.startswith("usage: cnosdb-jaeger-storage")
    for name in FIELDS:
        match = re.search(re.escape(flag(name)) + r" \S+ (.*?)\[" + re.escape(env(name)) + r"\]", text)
        assert match, f"{flag(name)} [{env(name)}] missing from --help"
        assert match.group(1).strip(), f"{flag(name)} has no description"


def test_help_of_the_parser_shows_defaults() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "[CNOSDB_JAEGER_GRPC_ADDR] (default: ':17271')" in text
    assert "[CNOSDB_JAEGER_BATCH_SIZE] (default: 5000)" in text
    assert "[CNOSDB_JAEGER_TTL] (default: '7d')" in text


def test_cli_reports_a_bad_option_and_exits_2() -> None:
    result = subprocess.run([sys.executable, "-m", "cnosdb_jaeger_storage.cli"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "CNOSDB_JAEGER_BATCH_SIZE": "0"}, check=False)
    assert result.returncode == 2
    assert result.stderr == "cnosdb-jaeger-storage: --batch-size must be at least 1\n"


def test_readme_documents_every_option() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [f.name for f in dataclasses.fields(Config)
               if f"`--{f.name.replace('_', '-')}`" not in readme or f"`CNOSDB_JAEGER_{f.name.upper()}`" not in readme]
    assert missing == []


@pytest.mark.parametrize(("url", "compression", "compress"), [
    ("", "auto", False),  # embedded cnosdb-lite
    ("http://127.0.0.1:8902", "auto", False),
    ("http://127.3.4.5:8902", "auto", False),
    ("http://localhost:8902", "auto", False),
    ("http://LOCALHOST.:8902", "auto", False),
    ("http://[::1]:8902", "auto", False),
    ("http://[::ffff:127.0.0.1]:8902", "auto", False),
    ("http://cnosdb:8902", "auto", True),
    ("https://10.0.0.7:8902", "auto", True),
    ("http://[2001:db8::1]:8902", "auto", True),
    ("http://128.0.0.1:8902", "auto", True),
    ("http://127.0.0.1:8902", "gzip", True),
    ("", "gzip", True),
    ("http://cnosdb:8902", "none", False),
], ids=["embedded", "127.0.0.1", "127/8", "localhost", "localhost-dot", "::1", "mapped", "name", "ip", "ipv6",
        "128", "forced-gzip", "embedded-gzip", "forced-none"])
def test_cnosdb_compression_is_off_on_loopback_unless_chosen(url: str, compression: str, compress: bool) -> None:
    config = load_config(["--cnosdb-compression", compression], {env("cnosdb_url"): url} if url else {})
    assert config.compress is compress
