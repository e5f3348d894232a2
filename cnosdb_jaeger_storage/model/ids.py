"""Trace IDs: Jaeger's 8-byte (64-bit) IDs widened to OTLP's 16 bytes, and the 32 hex digits the table stores."""

from __future__ import annotations

import re

from ..errors import InvalidValue

_HEX = re.compile(r"[0-9a-fA-F]{1,32}")


def widen_trace_id(raw: bytes) -> bytes:
    """A trace ID as 16 bytes; Jaeger's 8-byte IDs are the low half of one."""
    if len(raw) == 16:
        return raw
    if len(raw) == 8:
        return bytes(8) + raw
    raise InvalidValue(f"invalid trace ID length {len(raw)}: want 16 or 8 bytes")


def trace_id_hex(raw: bytes) -> str:
    """A 16- or 8-byte trace ID as the 32 hex digits stored."""
    return widen_trace_id(raw).hex()


def trace_id_from_text(text: str) -> str:
    """A trace ID in hex as people and Jaeger's UI write it (up to 32 digits, any case) as the 32 stored."""
    if not _HEX.fullmatch(text):
        raise InvalidValue(f"cannot parse traceID {text!r}")
    return text.lower().rjust(32, "0")
