"""A clock the engine tests move by hand."""

from __future__ import annotations

NOW = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now
