"""`cnosdb-jaeger-storage`: parse the options, set up logging, serve."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from .config import ConfigError, load_config
from .server import StartupError, serve


class KeyValueFormatter(logging.Formatter):
    """One line per record: `ts=… level=… logger=… msg="…"`, easy for people and log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        line = (f'ts={self.formatTime(record, "%Y-%m-%dT%H:%M:%S")} level={record.levelname.lower()} '
                f'logger={record.name} msg="{record.getMessage()}"')
        if record.exc_info:
            line += " exc=" + repr(self.formatException(record.exc_info))
        return line


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"cnosdb-jaeger-storage: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    try:
        asyncio.run(serve(config))
    except StartupError as exc:
        print(f"cnosdb-jaeger-storage: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
