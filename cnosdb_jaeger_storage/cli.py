"""`cnosdb-jaeger-storage`: parse the options, set up logging, serve."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cnosdb_lite import clikit

from .config import ConfigError, load_config
from .server import StartupError, serve


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"cnosdb-jaeger-storage: {exc}", file=sys.stderr)
        return 2
    clikit.setup_logging(config.log_level)
    try:
        clikit.run(serve(config), config.event_loop)
    except StartupError as exc:
        print(f"cnosdb-jaeger-storage: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
