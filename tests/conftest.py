"""Shared test helpers."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

# cnosdb-lite answers as a real CnosDB does, its defects included (docs/cnosdb-lite.md, quirks mode), in this
# process and in every cnosdb-lite process a test starts: the server's SQL must be right on CnosDB itself.
os.environ["CNOSDB_LITE_QUIRKS"] = "1"

# Jaeger's storage integration fixtures (v1.76.0), in the shared folder beside the checkout.
CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "jaeger-v1"
JAEGER_V1_TRACES = CONFORMANCE / "traces"

_GO_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_US, _S = 10**3, 10**9
_GO_DURATION_UNIT = {"ns": 1, "us": _US, "µs": _US, "μs": _US, "ms": 10**6, "s": _S, "m": 60 * _S}
_GO_DURATION_UNIT["h"] = 3600 * _S


def _go_duration_to_json(text: str) -> str:
    """A Go duration (`100000ns`, `1h2m0.5s`), as gogo jsonpb writes it, in proto3 JSON (`0.000100000s`)."""
    sign, body = ("-", text[1:]) if text.startswith("-") else ("", text.lstrip("+"))
    if body == "0":
        return "0s"
    parts = _GO_DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ValueError(f"not a Go duration: {text!r}")
    nanos = int(sum(Decimal(n) * _GO_DURATION_UNIT[u] for n, u in parts))
    return f"{sign}{nanos // 10**9}.{nanos % 10**9:09d}s"


def _fix_durations(node: object) -> object:
    if isinstance(node, dict):
        return {
            k: _go_duration_to_json(v) if k == "duration" and isinstance(v, str) else _fix_durations(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_fix_durations(v) for v in node]
    return node


def recent_dates() -> dict[str, str]:
    """Jaeger's suite moves the fixtures' 2017-01-26 to yesterday and 2017-01-25 to two days ago."""
    today = datetime.now(UTC).date()
    return {"2017-01-26": str(today - timedelta(days=1)), "2017-01-25": str(today - timedelta(days=2))}


def load_fixture(path: str | Path, dates: dict[str, str] | None = None):
    """A gogo-jsonpb `jaeger.api_v2.Trace` file (Jaeger's storage integration fixtures) as a message."""
    from google.protobuf import json_format

    from cnosdb_jaeger_storage.proto import model_pb2

    text = Path(path).read_text()
    for old, new in (dates or {}).items():
        text = text.replace(old, new)
    data = json.loads(text)
    return json_format.ParseDict(_fix_durations(data), model_pb2.Trace())


@pytest.fixture
def jaeger_fixture():
    """`load_fixture` as a fixture: `jaeger_fixture("example_trace")` loads that conformance trace."""
    return lambda name: load_fixture(JAEGER_V1_TRACES / f"{name}.json")


def sort_key_values(repeated) -> None:
    """In key order (ties by value): neither Jaeger nor OTLP gives tag or attribute order a meaning."""
    ordered = sorted(repeated, key=lambda kv: (kv.key, kv.SerializeToString(deterministic=True)))
    del repeated[:]
    repeated.extend(ordered)


def canonical_jaeger_span(span):
    """A copy with tags, process tags and log fields sorted and no process ID: Jaeger's own comparison."""
    from cnosdb_jaeger_storage.proto import model_pb2

    copy = model_pb2.Span()
    copy.CopyFrom(span)
    copy.process_id = ""
    for repeated in (copy.tags, copy.process.tags, *(log.fields for log in copy.logs)):
        sort_key_values(repeated)
    return copy
