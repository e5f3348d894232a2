"""Jaeger's storage integration fixtures, read where Go put them: nothing of Jaeger's is kept in this repository.

The directory is `internal/storage/integration/fixtures/` of the `github.com/jaegertracing/jaeger` module that
`e2e/jaeger/go.mod` pins (v1.76.0), in the Go module cache. `make -C e2e test` finds it with
`go list -m -f '{{.Dir}}' github.com/jaegertracing/jaeger` (run in `e2e/jaeger/`) and passes it to pytest as
`JAEGER_FIXTURES_DIR`; `make -C e2e fixtures-dir` prints it. It holds:

- `traces/<name>.json`: one `jaeger.api_v2.Trace` each, as gogo jsonpb writes it (base64 IDs, RFC 3339 times,
  Go durations such as `"5000ns"`, typed tags with `vType`);
- `queries.json`: the search cases; each has `Query` (ServiceName, OperationName, Tags, StartTimeMin/Max,
  DurationMin/Max in integer nanoseconds, NumTraces) and `ExpectedFixtures`, the traces to return.

Jaeger's suite moves the fixtures' 2017-01-26 to yesterday and 2017-01-25 to two days ago; so does `recent_dates`.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ENV = "JAEGER_FIXTURES_DIR"
# What Jaeger v1.76.0 ships: a directory with fewer is not the one meant.
EXPECTED_TRACES = 29
EXPECTED_QUERIES = 22


def fixtures_dir() -> tuple[Path | None, str]:
    """The fixture directory, or None and why it cannot be used."""
    value = os.environ.get(ENV, "")
    hint = (f"Run the e2e tests with `make e2e` (or `make -C e2e test`), which sets {ENV} from the Go module cache, "
            f"or set {ENV} to the output of `make -C e2e fixtures-dir`.")
    if not value:
        return None, f"{ENV} is not set: Jaeger's storage integration fixtures cannot be found. {hint}"
    path = Path(value)
    if not (path / "queries.json").is_file() or not (path / "traces").is_dir():
        return None, f"{ENV}={value} holds no queries.json and traces/: not Jaeger's fixture directory. {hint}"
    return path, ""


def _trace_names(path: Path) -> list[str]:
    return sorted(p.stem for p in (path / "traces").glob("*.json"))


def _queries(path: Path) -> list[dict]:
    return json.loads((path / "queries.json").read_text())


FIXTURES_DIR, PROBLEM = fixtures_dir()
TRACE_NAMES: list[str] = _trace_names(FIXTURES_DIR) if FIXTURES_DIR else []
QUERIES: list[dict] = _queries(FIXTURES_DIR) if FIXTURES_DIR else []

_GO_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_US, _S = 10**3, 10**9
_GO_DURATION_UNIT = {"ns": 1, "us": _US, "µs": _US, "μs": _US, "ms": 10**6, "s": _S, "m": 60 * _S, "h": 3600 * _S}


def go_duration_to_json(text: str) -> str:
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
            k: go_duration_to_json(v) if k == "duration" and isinstance(v, str) else _fix_durations(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_fix_durations(v) for v in node]
    return node


def recent_dates() -> dict[str, str]:
    """Jaeger's suite moves the fixtures' 2017-01-26 to yesterday and 2017-01-25 to two days ago."""
    today = datetime.now(UTC).date()
    return {"2017-01-26": str(today - timedelta(days=1)), "2017-01-25": str(today - timedelta(days=2))}


def load_trace(name: str, dates: dict[str, str] | None = None):
    """The fixture `traces/<name>.json` as a `jaeger.api_v2.Trace` message, its dates moved by `dates`."""
    from google.protobuf import json_format

    from cnosdb_jaeger_storage.proto import model_pb2

    assert FIXTURES_DIR is not None, PROBLEM
    text = (FIXTURES_DIR / "traces" / f"{name}.json").read_text()
    for old, new in (dates or {}).items():
        text = text.replace(old, new)
    return json_format.ParseDict(_fix_durations(json.loads(text)), model_pb2.Trace())


def query_of(case: dict):
    """A `queries.json` case as v1 `TraceQueryParameters`, its dates moved as the traces' are."""
    from google.protobuf import duration_pb2, timestamp_pb2

    from cnosdb_jaeger_storage.proto import storage_v1_pb2 as pb

    q, dates = case["Query"], recent_dates()

    def stamp(text: str) -> timestamp_pb2.Timestamp:
        for old, new in dates.items():
            text = text.replace(old, new)
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
        return ts

    def go_text(value: object) -> str:  # Jaeger's query sends every tag value as its text
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return pb.TraceQueryParameters(
        service_name=q["ServiceName"], operation_name=q["OperationName"],
        tags={k: go_text(v) for k, v in (q["Tags"] or {}).items()},
        start_time_min=stamp(q["StartTimeMin"]), start_time_max=stamp(q["StartTimeMax"]),
        duration_min=duration_pb2.Duration(nanos=q["DurationMin"]),
        duration_max=duration_pb2.Duration(nanos=q["DurationMax"]), num_traces=q["NumTraces"])
