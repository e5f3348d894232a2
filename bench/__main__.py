"""Runs every benchmark in bench/ in turn, each in its own process, with quick defaults: `python -m bench`.

A module listed in QUICK gets those arguments; any other module in bench/ runs with its own defaults.
Figures only; a benchmark that fails is reported and the others still run.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import time
from pathlib import Path

QUICK: dict[str, list[str]] = {
    "encode": ["--requests", "20", "--rounds", "5"],
    "cnosdb_lite": ["--sizes", "200000", "--batch", "5000", "--repeat", "20"],
    "plugin": ["--spans", "50000", "--stored", "200000", "--samples", "100", "--find-samples", "30",
               "--dep-samples", "5"],
}


def main() -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    failed = []
    for name in names:
        command = [sys.executable, "-m", f"bench.{name}", *QUICK.get(name, [])]
        print(f"\n######## bench.{name} {' '.join(QUICK.get(name, []))}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command, cwd=here.parent)
        print(f"######## bench.{name}: {'ok' if code == 0 else f'FAILED (exit {code})'} "
              f"in {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
