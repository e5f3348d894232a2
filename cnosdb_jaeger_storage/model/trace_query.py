"""A trace search, as every read API asks it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TraceQuery:
    """A trace search. Times in unix nanoseconds, None meaning no bound; attribute values as text."""

    service: str = ""
    operation: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    start_min: int | None = None
    start_max: int | None = None
    duration_min: int | None = None
    duration_max: int | None = None
    limit: int = 100
