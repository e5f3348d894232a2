"""The operations table: which service has which span names and kinds, kept apart from the spans.

In CnosDB's trace layout every span is a series (trace and span IDs are tags), so even CnosDB's series index
grows with the spans: `SHOW TAG VALUES` of the service column took 6 s at 1M spans on a real CnosDB. Jaeger
asks for services and operations on every page. So the server also writes, with the spans they come from,
one point per (service, span name, span kind, hour) into `<table>_operations`: tags `service`, `name`,
`kind`, field `last_start` (the newest start seen, ns), time the hour. Series: one per operation; rows: one
per operation and hour, whatever the number of spans. Points already written recently are not sent again,
so in a steady state a write carries no extra line. The database's TTL expires them with the spans.

A span table with no operations table (written by CnosDB's own `/api/v1/traces`, or before this server kept
one) is read from its own series index instead (`store.TraceStore.services`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ..model.stored_names import stored_name
from .quoting import lp_field_key, lp_measurement, lp_tag_key, lp_tag_value
from .span_columns import I64, TAG, TIME, Row, TableRows

HOUR_NS = 3600 * 10**9
SERVICE, NAME, KIND, LAST_START = "service", "name", "kind", "last_start"
_KIND_NAMES = dict((number, name) for name, number in trace_pb2.Span.SpanKind.items())
_REMEMBERED = 65_536  # (service, name, kind, hour) points known to be written; the oldest are forgotten

Point = tuple[str, str, int, int]  # service, span name, kind number, hour start (ns)
_KINDS = {SERVICE: TAG, NAME: TAG, KIND: TAG, LAST_START: I64}


def service_of(resource: resource_pb2.Resource) -> str:
    """The service of an operation: the string value of the resource's first `service.name` attribute."""
    return next((kv.value.string_value for kv in resource.attributes if kv.key == "service.name"), "")


def operations_table(span_table: str) -> str:
    return span_table + "_operations"


class OperationsIndex:
    """The lines a write must add to the operations table, and what is known to be there already."""

    def __init__(self, span_table: str) -> None:
        self.table = operations_table(span_table)
        self._measurement = lp_measurement(self.table)
        self._written: OrderedDict[Point, None] = OrderedDict()

    def lines(self, resource_spans: Iterable[trace_pb2.ResourceSpans]) -> tuple[list[str], list[Point]]:
        """Line protocol for the points of these spans not written recently, and those points."""
        return self.lines_of(service_groups(resource_spans))

    def lines_of(self, groups: Iterable[tuple[str, Iterable[Any]]]) -> tuple[list[str], list[Point]]:
        """`lines` of (service, spans) pairs; a span is an OTLP span or anything with its `name`, `kind` and
        `start_time_unix_nano` (such as `model.jaeger_otlp.JaegerSpanView`)."""
        newest = self._new_points(groups)
        return [self._line(point, start) for point, start in newest.items()], list(newest)

    def rows_of(self, groups: Iterable[tuple[str, Iterable[Any]]]) -> tuple[TableRows, list[Point]]:
        """`lines_of` as rows of values (`span_columns`): what cnosdb-lite parses out of those lines."""
        newest = self._new_points(groups)
        return TableRows(self.table, [self._row(point, start) for point, start in newest.items()], _KINDS), list(newest)

    def _new_points(self, groups: Iterable[tuple[str, Iterable[Any]]]) -> dict[Point, int]:
        """The points of the spans not written recently, each with the newest start of its spans."""
        newest: dict[Point, int] = {}
        written = self._written
        for service, spans in groups:
            for span in spans:
                start = span.start_time_unix_nano
                point = (service, span.name, span.kind, start - start % HOUR_NS)
                if point not in written and newest.get(point, -1) < start:
                    newest[point] = start
        return newest

    def remember(self, points: Iterable[Point]) -> None:
        """Points CnosDB acknowledged: later writes leave them out."""
        written = self._written
        for point in points:
            written[point] = None
            written.move_to_end(point)
        while len(written) > _REMEMBERED:
            written.popitem(last=False)

    def forget(self) -> None:
        self._written.clear()

    def _line(self, point: Point, last_start: int) -> str:
        tags = "".join(f",{lp_tag_key(key)}={lp_tag_value(value)}" for key, value in _tags(point))
        return f"{self._measurement}{tags} {lp_field_key(LAST_START)}={last_start}i {point[3]}"

    def _row(self, point: Point, last_start: int) -> Row:
        row: Row = {key: stored_name(value) for key, value in _tags(point)}
        row[LAST_START] = last_start
        row[TIME] = point[3]
        return row


def service_groups(resource_spans: Iterable[trace_pb2.ResourceSpans]) -> Iterable[tuple[str, Iterable[Any]]]:
    """The (service, spans) pairs of `OperationsIndex.lines_of` of OTLP spans."""
    return ((service_of(rs.resource), ss.spans) for rs in resource_spans for ss in rs.scope_spans)


def _tags(point: Point) -> list[tuple[str, str]]:
    """The tags of a point's row, those with a value: service, span name, kind."""
    service, name, kind, _ = point
    tags = [(key, value) for key, value in ((SERVICE, service), (NAME, name)) if value]
    tags.append((KIND, _KIND_NAMES.get(kind, str(kind))))
    return tags
