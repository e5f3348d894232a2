"""Every option of the server, declared once: flag, environment twin, default and meaning.

Precedence, tested: command-line flag, then environment variable, then default.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from cnosdb_lite import clikit
from cnosdb_lite.durations import parse_duration

ENV_PREFIX = "CNOSDB_JAEGER_"

DEFAULT_GRPC_ADDR = ":17271"  # Jaeger's remote-storage port
DEFAULT_OTLP_GRPC_ADDR = ":4317"
DEFAULT_OTLP_HTTP_ADDR = ":4318"
DEFAULT_ADMIN_ADDR = ":17270"  # Jaeger's remote-storage admin port
DEFAULT_TENANT = "cnosdb"
DEFAULT_DATABASE = "jaeger"
DEFAULT_TABLE = "jaeger_spans"
DEFAULT_TTL = "7d"
COMPRESSIONS = ("auto", "gzip", "none")



def default_data_dir(environ: Mapping[str, str] | None = None) -> str:
    return str(clikit.default_data_dir("cnosdb-jaeger-storage", environ))


@dataclass(frozen=True)
class Config:
    grpc_addr: str = field(default=DEFAULT_GRPC_ADDR, metadata={
        "help": "host:port of the gRPC server: Jaeger remote storage v1 and v2, OTLP TraceService, health"})
    otlp_grpc_addr: str = field(default=DEFAULT_OTLP_GRPC_ADDR, metadata={
        "help": "host:port of a second gRPC server with only the OTLP TraceService; empty disables it"})
    otlp_http_addr: str = field(default=DEFAULT_OTLP_HTTP_ADDR, metadata={
        "help": "host:port of the OTLP/HTTP receiver (POST /v1/traces and /api/v1/traces); empty disables it"})
    query_http_addr: str = field(default="", metadata={
        "help": "host:port of the Jaeger query HTTP API (/api/traces, ...) for Grafana; empty (default) disables it"})
    admin_addr: str = field(default=DEFAULT_ADMIN_ADDR, metadata={
        "help": "host:port serving Prometheus /metrics and /healthz; empty disables it"})
    cnosdb_url: str = field(default="", metadata={
        "help": "CnosDB HTTP API URL, e.g. http://127.0.0.1:8902; empty runs the embedded cnosdb-lite"})
    cnosdb_user: str = field(default="root", metadata={"help": "CnosDB user (Basic auth)"})
    cnosdb_password: str = field(default="", metadata={"help": "CnosDB password (Basic auth)"})
    cnosdb_wait: float = field(default=60.0, metadata={
        "help": "seconds to wait at start-up for CnosDB to answer (one log line per attempt) before giving up"})
    cnosdb_timeout: float = field(default=30.0, metadata={
        "help": "seconds one CnosDB request may take before the call fails with UNAVAILABLE / 503"})
    cnosdb_compression: str = field(default="auto", metadata={
        "help": "gzip of write bodies and query results: auto (none for a loopback or embedded CnosDB, else "
                "gzip), gzip or none"})
    tenant: str = field(default=DEFAULT_TENANT, metadata={"help": "CnosDB tenant holding the spans"})
    database: str = field(default=DEFAULT_DATABASE, metadata={
        "help": "CnosDB database holding the spans; created at start-up if missing"})
    table: str = field(default=DEFAULT_TABLE, metadata={
        "help": "span table; created by the first write, in CnosDB's own trace-table layout"})
    ttl: str = field(default=DEFAULT_TTL, metadata={
        "help": "retention of the database when this server creates it ('7d', '30d', 'INF')"})
    data_dir: str = field(default_factory=default_data_dir, metadata={
        "help": "data directory of the embedded cnosdb-lite (used only without --cnosdb-url)"})
    memtable_size: int = field(default=64, metadata={
        "help": "MiB of recent writes the embedded cnosdb-lite holds in memory before it writes them to disk as "
                "Parquet segments (used only without --cnosdb-url)"})
    batch_size: int = field(default=5000, metadata={
        "help": "spans per line-protocol write to CnosDB"})
    batch_delay: float = field(default=0.0, metadata={
        "help": "seconds an idle writer lingers for a full batch before writing a partial one; 0 (default) writes "
                "at once (group commit: what arrives while a write is in flight forms the next batch)"})
    max_writes_in_flight: int = field(default=2, metadata={
        "help": "CnosDB writes (batches) in flight at once per span table; a further write starts beside one in "
                "flight only for a full batch"})
    max_pending_spans: int = field(default=200_000, metadata={
        "help": "spans accepted but not yet written; beyond it writers wait (backpressure)"})
    write_retries: int = field(default=5, metadata={
        "help": "attempts of a failed CnosDB write (exponential backoff) before the client gets an error"})
    max_inflight_bytes: int = field(default=256 * 1024 * 1024, metadata={
        "help": "request bytes (decompressed) admitted at once across OTLP/HTTP and OTLP/gRPC; beyond it a request "
                "waits up to 5 s, then gets 503 with Retry-After / UNAVAILABLE, so exporters retry"})
    max_request_bytes: int = field(default=64 * 1024 * 1024, metadata={
        "help": "largest OTLP/HTTP request body (after decompression); larger gets 413"})
    max_span_attributes: int = field(default=128, metadata={
        "help": "attributes of one span (and of each event, link, resource, scope) that get a column each, the "
                "first in their order; the rest are kept in the level's attributes_overflow column (JSON), still "
                "read back and searchable. 128 is OpenTelemetry SDKs' own attribute count limit"})
    max_attribute_columns: int = field(default=1000, metadata={
        "help": "attribute columns a span table may hold; once it has them, attributes with a new key go to the "
                "overflow column, so no client can add columns without bound (each costs memory on every "
                "series). Concurrent instances may overshoot it slightly"})
    receiver_user: str = field(default="", metadata={
        "help": "user that OTLP/HTTP and query HTTP clients must present with Basic auth; empty: no auth"})
    receiver_password: str = field(default="", metadata={"help": "password for --receiver-user"})
    tenant_header: str = field(default="x-tenant", metadata={
        "help": "gRPC metadata / HTTP header naming the Jaeger tenant"})
    max_tables: int = field(default=16, metadata={
        "help": "most span tables that CnosDB's tenant/db/table headers may address beyond the configured ones "
                "(each gets a writer of its own); requests for more are refused with 403"})
    tenants: str = field(default="", metadata={
        "help": "comma list of allowed tenants, each 'name' or 'name=cnosdb_tenant/database'; "
                "a tenant maps to the CnosDB database of its own name unless given; empty: tenants ignored"})
    purge_addr: str = field(default="", metadata={
        "help": "TEST ONLY: host:port serving POST /purge, which deletes every span; empty (default) disables it"})
    v1_streaming_writer: bool = field(default=True, metadata={
        "help": "offer Jaeger 1.x the streaming span writer (faster); turn off for a jaeger-collector 1.x that "
                "receives OTLP, whose streaming client ties pooled streams to finished OTLP requests and loses spans"})
    log_level: str = field(default="warning", metadata={"help": "debug, info, warning or error"})
    event_loop: str = field(default="auto", metadata={
        "help": "event loop: uvloop (faster: a fifth less CPU per unary write), asyncio's own, or auto: uvloop where "
                "it is installed"})

    @property
    def embedded(self) -> bool:
        return not self.cnosdb_url

    @property
    def compress(self) -> bool:
        """Whether CnosDB bodies are gzipped: --cnosdb-compression, or for auto, unless CnosDB is on loopback."""
        if self.cnosdb_compression != "auto":
            return self.cnosdb_compression == "gzip"
        return not (self.embedded or is_loopback(urlparse(self.cnosdb_url).hostname or ""))


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (also IPv4-mapped); a name other than localhost is not resolved."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnosdb-jaeger-storage",
        description="Jaeger remote storage (v1 and v2 gRPC APIs) and an OTLP receiver over CnosDB. "
                    "Every option has an environment-variable twin, shown in brackets.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {clikit.version()}")
    for f in dataclasses.fields(Config):
        default = _default_of(f)
        parser.add_argument(_flag(f.name), dest=f.name, type=_parser_of(default), default=None,
                            help=f"{f.metadata['help']} [{_env(f.name)}] (default: {default!r})")
    return parser


def _default_of(f: dataclasses.Field[Any]) -> object:
    """A Config field's default value, from its default or its default_factory."""
    if f.default is not dataclasses.MISSING:
        return f.default
    factory = f.default_factory
    if not callable(factory):
        raise TypeError(f"Config.{f.name} has no default")
    return factory()


def _parser_of(default: object) -> Callable[[str], object]:
    return clikit.parse_bool if isinstance(default, bool) else type(default)


class ConfigError(ValueError):
    """A bad option value; the message names the option."""


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(argv))
    values: dict[str, Any] = {}  # option name → value of its own type, as Config declares it
    for f in dataclasses.fields(Config):
        if args[f.name] is not None:
            values[f.name] = args[f.name]
        elif _env(f.name) in environ:
            default = _default_of(f)
            raw = environ[_env(f.name)]
            try:
                values[f.name] = _parser_of(default)(raw)
            except ValueError:
                raise ConfigError(f"{_env(f.name)}: cannot read {raw!r} as {type(default).__name__}") from None
    values.setdefault("data_dir", default_data_dir(environ))  # from the environment given, like every option
    config = Config(**values)
    validate(config)
    return config


def validate(config: Config) -> None:
    if config.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if config.max_pending_spans < config.batch_size:
        raise ConfigError("--max-pending-spans must be at least --batch-size")
    if config.batch_delay < 0:
        raise ConfigError("--batch-delay must be at least 0 seconds")
    if config.max_writes_in_flight < 1:
        raise ConfigError("--max-writes-in-flight must be at least 1")
    if config.cnosdb_compression not in COMPRESSIONS:
        raise ConfigError("--cnosdb-compression must be auto, gzip or none")
    if config.write_retries < 1:
        raise ConfigError("--write-retries must be at least 1")
    if config.max_inflight_bytes < 1:
        raise ConfigError("--max-inflight-bytes must be at least 1")
    if config.max_span_attributes < 0:
        raise ConfigError("--max-span-attributes must be at least 0")
    if config.max_attribute_columns < 0:
        raise ConfigError("--max-attribute-columns must be at least 0")
    if config.memtable_size < 1:
        raise ConfigError("--memtable-size must be at least 1 MiB")
    if config.max_tables < 0:
        raise ConfigError("--max-tables must be at least 0")
    if config.cnosdb_url:
        url = urlparse(config.cnosdb_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"--cnosdb-url: {config.cnosdb_url!r} is not an http:// or https:// URL "
                              "such as http://127.0.0.1:8902")
    if config.cnosdb_wait < 0:
        raise ConfigError("--cnosdb-wait must be at least 0 seconds")
    if not config.cnosdb_timeout > 0:
        raise ConfigError("--cnosdb-timeout must be more than 0 seconds")
    if config.log_level not in clikit.LOG_LEVELS:
        raise ConfigError("--log-level must be debug, info, warning or error")
    try:
        clikit.event_loop_factory(config.event_loop)
    except ValueError as exc:
        raise ConfigError(f"--event-loop: {exc}") from None
    for name in ("grpc_addr", "otlp_grpc_addr", "otlp_http_addr", "query_http_addr", "admin_addr", "purge_addr"):
        value = getattr(config, name)
        if value:
            split_addr(value, option=_flag(name))
    if not config.grpc_addr:
        raise ConfigError("--grpc-addr must not be empty")
    if config.ttl.strip().upper() != "INF" and not ttl_seconds(config.ttl):
        raise ConfigError(f"--ttl: {config.ttl!r} is not a retention such as '7d', '12h' or 'INF'")


def ttl_seconds(ttl: str) -> int | None:
    """'7d' → 604800, and CnosDB's own spelling ('11months 30days 3h 50m 24s'); None for 'INF' or unreadable."""
    try:
        ns = parse_duration(ttl)
    except ValueError:
        return None
    return None if ns is None else ns // 10**9


def split_addr(addr: str, option: str = "address") -> tuple[str, int]:
    """'host:port' or ':port' (all interfaces) into (host, port)."""
    try:
        return clikit.parse_addr(addr)
    except ValueError:
        raise ConfigError(f"{option}: {addr!r} is not host:port") from None
