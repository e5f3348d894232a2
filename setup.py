"""The build: generates the protobuf and gRPC stubs from protos/ before the package is built.

The stubs are never in git, so `pip install .`, `pip wheel .` and an editable install all run
scripts/gen_protos.py first (grpcio-tools and opentelemetry-proto are build requirements, pyproject.toml).
Everything else about the package is declared in setup.cfg.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
STUBS = "cnosdb_jaeger_storage._gen"


class BuildWithStubs(build_py):
    def run(self) -> None:
        subprocess.check_call([sys.executable, str(ROOT / "scripts" / "gen_protos.py"),
                               "--proto-dir", str(ROOT / "protos"), "--out", str(ROOT / STUBS.replace(".", "/")),
                               "--package", STUBS])
        # The stub packages did not exist when setup.cfg's `packages = find:` ran.
        found = find_packages(str(ROOT), include=[STUBS, STUBS + ".*"])
        self.distribution.packages = sorted({*(self.distribution.packages or []), *found})
        self.packages = self.distribution.packages
        super().run()


setup(cmdclass={"build_py": BuildWithStubs})
