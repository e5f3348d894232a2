"""`cnosdb-lite`: run the embedded CnosDB-compatible engine behind CnosDB's HTTP API.

Every option has an environment-variable twin; precedence is flag, then environment, then default.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from . import clikit
from .lock import DataDirLocked

DEFAULT_HTTP_ADDR = "127.0.0.1:8902"  # CnosDB's default HTTP port
DEFAULT_USER = "root"
DEFAULT_LOG_LEVEL = "warning"
ENV_PREFIX = "CNOSDB_LITE_"

log = logging.getLogger("cnosdb_lite")


def default_data_dir() -> Path:
    return clikit.default_data_dir("cnosdb-lite")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _env(name: str) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return value if value else None


def _env_bool(name: str) -> bool:
    value = _env(name)
    if value is None:
        return False
    try:
        return clikit.parse_bool(value)
    except ValueError:
        raise SystemExit(f"cnosdb-lite: error: {ENV_PREFIX}{name} must be true or false, not {value!r}") from None


def parse_http_addr(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces)."""
    try:
        return clikit.parse_addr(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.dest == "password":  # never echo a password taken from the environment
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnosdb-lite",
        description=(
            "A single-process, CnosDB-compatible time-series store serving CnosDB's HTTP API "
            "(/api/v1/ping, /api/v1/sql, /api/v1/write, /api/v1/traces) for development, tests and "
            "small deployments. Options fall back to their environment variable, then to the default."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {clikit.version()}")
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        default=_env("DATA_DIR") or default_data_dir(),
        help=f"directory holding all databases; created if missing [env {ENV_PREFIX}DATA_DIR]",
    )
    parser.add_argument(
        "--http-addr",
        type=parse_http_addr,
        metavar="HOST:PORT",
        default=_env("HTTP_ADDR") or DEFAULT_HTTP_ADDR,
        help=f"HOST:PORT to serve the HTTP API on; port 0 picks a free one [env {ENV_PREFIX}HTTP_ADDR]",
    )
    parser.add_argument(
        "--user",
        metavar="NAME",
        default=_env("USER") or DEFAULT_USER,
        help=f"the one user that exists; requests must send it with HTTP Basic auth "
        f"[env {ENV_PREFIX}USER]",
    )
    parser.add_argument(
        "--password",
        metavar="TEXT",
        default=_env("PASSWORD") or "",
        help=f"password of --user; only checked with --auth-enabled [env {ENV_PREFIX}PASSWORD]",
    )
    parser.add_argument(
        "--auth-enabled",
        action="store_true",
        default=_env_bool("AUTH_ENABLED"),
        help=f"check the password (like CnosDB's auth_enabled); without it any password is accepted "
        f"for --user [env {ENV_PREFIX}AUTH_ENABLED=true]",
    )
    parser.add_argument(
        "--quirks",
        action="store_true",
        default=_env_bool("QUIRKS"),
        help=f"reproduce CnosDB 2.4.3's known query defects (a field comparison matches rows written "
        f"before the field existed) and report tag-index use in the x-cnosdb-lite-scan header "
        f"[env {ENV_PREFIX}QUIRKS=true]",
    )
    parser.add_argument(
        "--memtable-size",
        metavar="MIB",
        type=_positive_int,
        default=_env("MEMTABLE_SIZE") or "64",          # a string default goes through `type` too
        help=f"MiB of recent writes kept in memory before they are flushed to Parquet segments on disk "
        f"[env {ENV_PREFIX}MEMTABLE_SIZE]",
    )
    parser.add_argument(
        "--event-loop",
        choices=clikit.EVENT_LOOPS,
        default=_env("EVENT_LOOP") or "auto",
        help=f"event loop: uvloop (faster), asyncio's own, or auto: uvloop where it is installed "
        f"[env {ENV_PREFIX}EVENT_LOOP]",
    )
    parser.add_argument(
        "--log-level",
        choices=clikit.LOG_LEVELS,
        default=(_env("LOG_LEVEL") or DEFAULT_LOG_LEVEL).lower(),
        help=f"least severe log records written to stderr as key=value lines; 'info' adds start-up "
        f"and shutdown, 'debug' one line per request [env {ENV_PREFIX}LOG_LEVEL]",
    )
    return parser


async def _serve(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .http_server import start_server

    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = await asyncio.to_thread(Engine, str(data_dir), quirks=args.quirks,
                                     memtable_bytes=args.memtable_size << 20)
    try:
        host, port = args.http_addr
        server = await start_server(
            engine,
            host,
            port,
            user=args.user,
            password=args.password,
            auth_enabled=args.auth_enabled,
        )
    except BaseException:
        engine.close()
        raise
    clikit.tune_gc()
    log.info("event=listening url=%s data_dir=%s auth_enabled=%s quirks=%s", server.url, data_dir,
             args.auth_enabled, args.quirks)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("event=stopping")
    await server.close()
    await asyncio.to_thread(engine.close)
    log.info("event=stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        clikit.event_loop_factory(args.event_loop)
    except ValueError as exc:
        parser.error(f"--event-loop: {exc}")
    clikit.setup_logging(args.log_level)
    try:
        return clikit.run(_serve(args), args.event_loop)
    except DataDirLocked as exc:          # another process owns the directory: one line, no traceback
        print(f"cnosdb-lite: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        log.error("event=start_failed error=%r", str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
