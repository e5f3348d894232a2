"""The server's Prometheus metrics, on prometheus_client, with the process's own (CPU, memory, file handles).

`METRICS.<name>.inc/set/observe(value, **labels)` is what the code calls; each metric declares its label
names once here. `METRICS.<name>.value(**labels)` reads a sample back (tests, and the server's own reports).
"""

from __future__ import annotations

import prometheus_client as prom
from prometheus_client import CollectorRegistry

_PREFIX = "cnosdb_jaeger_"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Metric:
    """One metric of the registry, labelled by keyword."""

    def __init__(self, metric: prom.Counter | prom.Gauge | prom.Histogram, sample: str,
                 registry: CollectorRegistry) -> None:
        self._metric = metric
        self._sample = sample
        self._registry = registry
        # Each labelled child, by its labels as given: `labels()` takes a lock and checks the names every time
        # (3 µs; a unary write counts 4 labelled samples). Label values are few: APIs, outcomes, reasons.
        self._children: dict[tuple[tuple[str, str], ...], prom.Counter | prom.Gauge | prom.Histogram] = {}

    def _child(self, labels: dict[str, str]) -> prom.Counter | prom.Gauge | prom.Histogram:
        if not labels:
            return self._metric
        key = tuple(labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._metric.labels(**labels)
        return child

    def value(self, **labels: str) -> float:
        return self._registry.get_sample_value(self._sample, labels) or 0.0


class Counter(_Metric):
    def inc(self, amount: float = 1, **labels: str) -> None:
        self._child(labels).inc(amount)  # type: ignore[union-attr]  # a Counter's children are Counters


class Gauge(_Metric):
    def inc(self, amount: float = 1, **labels: str) -> None:
        self._child(labels).inc(amount)  # type: ignore[union-attr]  # a Gauge's children are Gauges

    def set(self, value: float, **labels: str) -> None:
        self._child(labels).set(value)  # type: ignore[union-attr]  # a Gauge's children are Gauges


class Histogram(_Metric):
    def observe(self, seconds: float, **labels: str) -> None:
        self._child(labels).observe(seconds)  # type: ignore[union-attr]  # a Histogram's children are too


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        prom.ProcessCollector(registry=self.registry)
        prom.PlatformCollector(registry=self.registry)
        self.spans_received = self._counter("spans_received", "Spans received, by transport.", "transport")
        self.spans_written = self._counter("spans_written", "Spans written to CnosDB and acknowledged.")
        self.spans_rejected = self._counter(
            "spans_rejected", "Spans not stored, by reason; each is also logged and reported to the client.",
            "reason")
        self.write_batches = self._counter("write_batches", "Line-protocol writes to CnosDB, by outcome.", "outcome")
        self.write_retries = self._counter("write_retries", "Retried CnosDB writes.")
        self.pending_spans = self._gauge("pending_spans", "Spans accepted and waiting to be written.")
        self.attributes_overflowed = self._counter(
            "attributes_overflowed",
            "Attributes stored in their level's attributes_overflow column (beyond --max-span-attributes or "
            "--max-attribute-columns), by level; kept and searchable, not lost.", "level")
        self.inflight_bytes = self._gauge("inflight_request_bytes", "Request bytes admitted and not yet answered.")
        self.requests_overloaded = self._counter(
            "requests_overloaded", "Requests answered 503 / UNAVAILABLE: the in-flight budget stayed full.")
        self.cnosdb_errors = self._counter(
            "cnosdb_errors", "Errors answered by CnosDB, by request kind and code.", "kind", "code")
        self.cnosdb_seconds = self._histogram("cnosdb_request_seconds", "CnosDB request latency, by kind.", "kind")
        self.requests = self._counter("requests", "API requests, by API, method and outcome.", "api", "outcome")
        self.request_seconds = self._histogram("request_seconds", "API request latency, by API and method.", "api")

    def render(self) -> str:
        return prom.generate_latest(self.registry).decode()

    def _counter(self, name: str, help_text: str, *labels: str) -> Counter:
        metric = prom.Counter(_PREFIX + name, help_text, labels, registry=self.registry)
        return Counter(metric, _PREFIX + name + "_total", self.registry)

    def _gauge(self, name: str, help_text: str, *labels: str) -> Gauge:
        metric = prom.Gauge(_PREFIX + name, help_text, labels, registry=self.registry)
        return Gauge(metric, _PREFIX + name, self.registry)

    def _histogram(self, name: str, help_text: str, *labels: str) -> Histogram:
        metric = prom.Histogram(_PREFIX + name, help_text, labels, registry=self.registry, buckets=_BUCKETS)
        return Histogram(metric, _PREFIX + name + "_count", self.registry)


METRICS = Metrics()
