"""Fixtures of the engine tests: an engine on a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cnosdb_lite.engine import Engine

from .fake_clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path: Path, clock: Clock) -> Iterator[Engine]:
    e = Engine(tmp_path / "data", now_ns=clock)
    yield e
    e.close()
