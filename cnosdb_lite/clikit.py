"""What both console scripts (`cnosdb-jaeger-storage` and `cnosdb-lite`) share: log format, addresses, booleans,
data directories and the version.

It lives here, in the lower of the two packages, because the plugin depends on cnosdb-lite (it embeds it) and
never the other way round. It imports nothing beyond the standard library, so the plugin can use it without
the `embedded` extra (pyarrow and DataFusion) installed.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

DISTRIBUTION = "cnosdb-jaeger-storage"  # the distribution both commands ship in
LOG_LEVELS = ("debug", "info", "warning", "error")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class KeyValueFormatter(logging.Formatter):
    """One line per record: `ts=… level=… logger=… msg="…"`, easy for people and log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        line = (f'ts={self.formatTime(record, "%Y-%m-%dT%H:%M:%S")} level={record.levelname.lower()} '
                f'logger={record.name} msg="{record.getMessage()}"')
        if record.exc_info:
            line += " exc=" + repr(self.formatException(record.exc_info))
        return line


def setup_logging(level: str) -> None:
    """Key=value lines on stderr from `level` up; aiohttp's access log only from warnings."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


# Collect the young generation every 10,000 new container objects instead of 700 (`tune_gc`).
YOUNG_GENERATION_THRESHOLD = 10_000


def tune_gc() -> None:
    """Set the garbage collector up for a long-running server, once start-up is over.

    Start-up's objects (modules, protobuf descriptors, pyarrow and DataFusion bindings) live as long as the
    process: `gc.freeze` takes them out of every later collection. And a write of 512 spans allocates tens of
    thousands of short-lived tuples, lists and rows; with CPython's default threshold of 700 they outlive
    several young collections and are promoted, so full collections come often. Measured on an ingest of
    61,440 spans over OTLP/HTTP and WriteSpanStream, the server spent 0.76 s in the collector with the
    defaults and 0.16 s after this (of about 8.5 s of CPU); each young collection then takes about 1 ms.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older * 2, oldest)


T = TypeVar("T")


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop a server runs on (`EVENT_LOOPS`): uvloop, libuv's loop, or asyncio's own; "auto" is uvloop
    where it is installed (a dependency everywhere but Windows).

    uvloop makes each gRPC call and HTTP request cheaper: measured on unary WriteSpan with 16 calls in flight,
    650-740 µs of server CPU per span on uvloop against 855-930 on asyncio's loop. ValueError for "uvloop" where it
    is not installed."""
    if name not in EVENT_LOOPS:
        raise ValueError(f"event loop must be one of {', '.join(EVENT_LOOPS)}, not {name!r}")
    if name != "asyncio":
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise ValueError("event loop uvloop: uvloop is not installed") from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def event_loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """"uvloop" or "asyncio": which of `EVENT_LOOPS` `loop` is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], event_loop: str) -> T:
    """`asyncio.run(main)` on the event loop named `event_loop` (`event_loop_factory`)."""
    with asyncio.Runner(loop_factory=event_loop_factory(event_loop)) as runner:
        return runner.run(main)


def parse_bool(text: str) -> bool:
    """'true'/'false' (also 1/0, yes/no, on/off, any case) for a flag or environment variable."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true or false")


def parse_addr(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces) into (host, port); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not host:port")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def default_data_dir(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/<name>`, else `~/.local/share/<name>`."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / name


def version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
