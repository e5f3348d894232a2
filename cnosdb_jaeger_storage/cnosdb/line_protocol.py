"""OTLP spans, and Jaeger spans (`Encoder.encode_jaeger`), to line protocol, one line per span, in the layout of
docs/schema.md: the rows of `span_encoding.SpanWalker` as text, for CnosDB's HTTP API.

A row's cells are kept as escaped fragments (`,<column>=<value>`) whose column part, the sink's token, is escaped
once and cached by the walk. Names go through `quoting`. Timestamps are nanoseconds: the writer posts with
`precision=ns`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.proto.trace.v1 import trace_pb2

from ..model import span_rows as col
from ..model.jaeger_otlp import ProcessGroup
from .quoting import lp_field_key, lp_field_string, lp_measurement, lp_tag_key, lp_tag_value
from .span_encoding import CACHE_LIMIT, AttributeBudget, SpanWalker

__all__ = ["AttributeBudget", "Encoder", "encode_resource_spans"]

# A group of cells in line protocol: its tags and its fields, each a string of `,<column>=<value>` fragments.
LineGroup = tuple[str, str]


class LineSink:
    """`span_encoding.RowSink` of line protocol: each span a line appended to `lines`.

    A row's fragments go to two lists, its tags and its fields, emptied by `begin` and reused, so that string
    cells, the hot path, go through a closure over the fields (`_string_cells`) that looks nothing up.
    """

    string: Callable[[str, str], object]

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.measurement = ""
        self._tags: list[str] = []
        self._fields: list[str] = []
        self._head = self._tail = ""
        self._tag_values: dict[str, str] = {}
        self.string = _string_cells(self._fields)

    def tag_token(self, column: str) -> str:
        return "," + lp_tag_key(column) + "="

    def string_token(self, column: str) -> str:
        # The kind starts the field set (the walk writes it first), so it carries no leading comma.
        return ("" if column == col.KIND else ",") + lp_field_key(column) + '="'

    def number_token(self, column: str) -> str:
        return "," + lp_field_key(column) + "="

    integer_token = number_token

    def tag(self, token: str, value: str) -> None:
        values = self._tag_values
        escaped = values.get(value)
        if escaped is None:
            if len(values) >= CACHE_LIMIT:
                values.clear()
            escaped = values[value] = lp_tag_value(value)
        self._tags.append(token + escaped)

    def id_tag(self, token: str, hex_id: str) -> None:
        self._tags.append(token + hex_id)

    def number(self, token: str, value: int) -> None:
        self._fields.append(f"{token}{value}")

    def integer(self, token: str, value: int) -> None:
        self._fields.append(f"{token}{value}i")

    def begin(self) -> None:
        self._tags.clear()
        self._fields.clear()

    def end_group(self) -> LineGroup:
        return "".join(self._tags), "".join(self._fields)

    def use_groups(self, resource: LineGroup, scope: LineGroup) -> None:
        self._head = self.measurement + resource[0] + scope[0]
        self._tail = resource[1] + scope[1]

    def end_span(self, start: int) -> None:
        self.lines.append(f"{self._head}{''.join(self._tags)} {''.join(self._fields)}{self._tail} {start}")


def _string_cells(fields: list[str]) -> Callable[[str, str], None]:
    """`LineSink.string`: a string cell appended to `fields`, a closure so that the hot path looks nothing up."""
    append = fields.append

    def string(token: str, text: str) -> None:
        if '"' in text or "\\" in text:
            text = lp_field_string(text)[1:-1]
        append(f'{token}{text}"')
    return string


class Encoder(SpanWalker[LineGroup]):
    """OTLP to line protocol under an attribute budget, with the caches that make it fast.

    One per table (its `AttributeBudget` knows that table's columns). `overflowed` counts, by level, the
    attributes that went to an overflow column since `take_overflowed` was last called.
    """

    def __init__(self, budget: AttributeBudget | None = None) -> None:
        self._lines = LineSink()
        super().__init__(self._lines, budget)

    def encode(self, table: str, resource_spans: Iterable[trace_pb2.ResourceSpans]) -> list[str]:
        """Line protocol for every span, one line per span (without newline), in input order.

        Join lines with "\\n" to post them; any split between lines is a valid request body.
        """
        self._lines.measurement = lp_measurement(table)
        self.walk(resource_spans)
        return self._take()

    def encode_jaeger(self, table: str, groups: Iterable[ProcessGroup]) -> list[str]:
        """`encode` of Jaeger spans without OTLP messages (`SpanWalker.walk_jaeger`)."""
        self._lines.measurement = lp_measurement(table)
        self.walk_jaeger(groups)
        return self._take()

    def _take(self) -> list[str]:
        lines = self._lines.lines
        self._lines.lines = []
        return lines


_DEFAULT = Encoder()


def encode_resource_spans(table: str, resource_spans: Iterable[trace_pb2.ResourceSpans],
                          encoder: Encoder | None = None) -> list[str]:
    """Line protocol for every span, one line per span (without newline), in input order, through
    `encoder` (its budget decides which attributes overflow); without one, every attribute gets a column.

    Join lines with "\\n" to post them; any split between lines is a valid request body.
    """
    return (encoder or _DEFAULT).encode(table, resource_spans)
