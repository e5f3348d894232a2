"""CnosDB's durations (Rust humantime, as its TTL and VNODE_DURATION options take them), parsed and printed.

The plugin checks `--ttl` with the same parser, so both agree on what CnosDB accepts. Standard library only
(see clikit.py for why).
"""

from __future__ import annotations

import re

_S = 10**9
_UNITS = {
    "nsec": 1, "ns": 1, "usec": 10**3, "us": 10**3, "msec": 10**6, "ms": 10**6,
    "seconds": _S, "second": _S, "sec": _S, "s": _S,
    "minutes": 60 * _S, "minute": 60 * _S, "min": 60 * _S, "m": 60 * _S,
    "hours": 3600 * _S, "hour": 3600 * _S, "hr": 3600 * _S, "h": 3600 * _S,
    "days": 86400 * _S, "day": 86400 * _S, "d": 86400 * _S,
    "weeks": 7 * 86400 * _S, "week": 7 * 86400 * _S, "w": 7 * 86400 * _S,
    "months": 2_630_016 * _S, "month": 2_630_016 * _S, "M": 2_630_016 * _S,  # 30.44 days
    "years": 31_557_600 * _S, "year": 31_557_600 * _S, "y": 31_557_600 * _S,  # 365.25 days
}
_PART = re.compile(r"\s*(\d+)\s*([A-Za-z]+)")
_FORMAT_UNITS = [("year", 31_557_600 * _S), ("month", 2_630_016 * _S), ("day", 86400 * _S), ("h", 3600 * _S),
                 ("m", 60 * _S), ("s", _S), ("ms", 10**6), ("us", 10**3), ("ns", 1)]


def parse_duration(text: str) -> int | None:
    """Nanoseconds of `7d`, `30 days`, `11months 30days 3h 50m 24s` or a bare number of days; None for INF.

    ValueError for anything else."""
    t = text.strip()
    if t.upper() == "INF":
        return None
    if t.isdigit():
        return int(t) * 86400 * _S
    total, pos = 0, 0
    for m in _PART.finditer(t):
        if m.start() != pos or m.group(2) not in _UNITS:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(t) or pos == 0:
        raise ValueError(f"'{text}' is not a valid duration or 'INF'")
    return total


def format_duration(ns: int | None) -> str:
    """As CnosDB prints a duration in DESCRIBE DATABASE: `7days`, `1year 2months 3h`, `INF`."""
    if ns is None:
        return "INF"
    if ns == 0:
        return "0s"
    parts = []
    for name, size in _FORMAT_UNITS:
        q, ns = divmod(ns, size)
        if q:
            plural = "s" if q > 1 and name in ("year", "month", "day") else ""
            parts.append(f"{q}{name}{plural}")
    return " ".join(parts)
