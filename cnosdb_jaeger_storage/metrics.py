"""Prometheus metrics in the text exposition format, with no dependency beyond the standard library."""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _render_labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Counter:
    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: dict[Labels, float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, amount: float = 1, **labels: str) -> None:
        with self._lock:
            self._values[_labels(labels)] += amount

    def value(self, **labels: str) -> float:
        return self._values.get(_labels(labels), 0.0)

    def samples(self) -> list[str]:
        return [f"{self.name}{_render_labels(k)} {v}" for k, v in sorted(self._values.items())]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[_labels(labels)] = value


class Histogram:
    kind = "histogram"
    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._series: dict[Labels, list[float]] = {}
        self._lock = threading.Lock()

    def observe(self, seconds: float, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.BUCKETS) + 2))
            for i, bound in enumerate(self.BUCKETS):
                if seconds <= bound:
                    series[i] += 1
            series[-2] += 1  # count
            series[-1] += seconds  # sum

    def samples(self) -> list[str]:
        lines = []
        for key, series in sorted(self._series.items()):
            for bound, count in zip(self.BUCKETS, series, strict=False):
                le = f'le="{bound}"'
                lines.append(f"{self.name}_bucket{_render_labels(key, le)} {count}")
            le = 'le="+Inf"'
            lines.append(f"{self.name}_bucket{_render_labels(key, le)} {series[-2]}")
            lines.append(f"{self.name}_count{_render_labels(key)} {series[-2]}")
            lines.append(f"{self.name}_sum{_render_labels(key)} {series[-1]}")
        return lines


class Metrics:
    def __init__(self) -> None:
        p = "cnosdb_jaeger_"
        self.spans_received = Counter(p + "spans_received_total", "Spans received, by transport.")
        self.spans_written = Counter(p + "spans_written_total", "Spans written to CnosDB and acknowledged.")
        self.spans_rejected = Counter(
            p + "spans_rejected_total", "Spans not stored, by reason; each is also logged and reported to the client.")
        self.write_batches = Counter(p + "write_batches_total", "Line-protocol writes to CnosDB, by outcome.")
        self.write_retries = Counter(p + "write_retries_total", "Retried CnosDB writes.")
        self.pending_spans = Gauge(p + "pending_spans", "Spans accepted and waiting to be written.")
        self.attributes_overflowed = Counter(
            p + "attributes_overflowed_total",
            "Attributes stored in their level's attributes_overflow column (beyond --max-span-attributes or "
            "--max-attribute-columns), by level; kept and searchable, not lost.")
        self.inflight_bytes = Gauge(p + "inflight_request_bytes", "Request bytes admitted and not yet answered.")
        self.requests_overloaded = Counter(
            p + "requests_overloaded_total", "Requests answered 503 / UNAVAILABLE: the in-flight budget stayed full.")
        self.cnosdb_errors = Counter(p + "cnosdb_errors_total", "Errors answered by CnosDB, by request kind and code.")
        self.cnosdb_seconds = Histogram(p + "cnosdb_request_seconds", "CnosDB request latency, by kind.")
        self.requests = Counter(p + "requests_total", "API requests, by API, method and outcome.")
        self.request_seconds = Histogram(p + "request_seconds", "API request latency, by API and method.")

    def render(self) -> str:
        out: list[str] = []
        for metric in vars(self).values():
            out.append(f"# HELP {metric.name} {metric.help}")
            out.append(f"# TYPE {metric.name} {metric.kind}")
            out.extend(metric.samples())
        return "\n".join(out) + "\n"


METRICS = Metrics()
