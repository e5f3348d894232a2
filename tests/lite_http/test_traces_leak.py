"""`POST /api/v1/traces` stores what CnosDB stores, defect included (facts: cnosdb-measured.md section 4).

CnosDB's `parse_protobuf_to_otlptrace` fills one column map per ResourceSpans and pushes a copy of it per
span: columns an earlier span set and a later one does not set leak into the later one.
"""

from __future__ import annotations

import itertools
import json

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SP = "ResourceSpans/ScopeSpans/Span/"
SC = "ResourceSpans/ScopeSpans/InstrumentationScope/"
START = 1690510331000000000
_tables = itertools.count()


def ingest(client, request: ExportTraceServiceRequest) -> str:
    table = f"leak{next(_tables)}"
    reply = client.request("POST", "/api/v1/traces", request.SerializeToString(),
                           headers={"Content-Type": "application/x-protobuf", "table": table})
    assert (reply.status, reply.body) == (200, b""), reply.text
    return table


def select(client, sql: str, columns: tuple[str, ...]) -> list[dict]:
    """Rows with every column in `columns` (CnosDB's JSON output leaves out null cells)."""
    reply = client.ok_sql(sql)
    return [{c: row.get(c) for c in columns} for row in (json.loads(reply.body) if reply.body else [])]


def sdk_export() -> tuple[ExportTraceServiceRequest, dict[str, str]]:
    """One BatchSpanProcessor export of a root with two children, in end order: child1, child2, root."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("leak-test", "1.0")
    with tracer.start_as_current_span("root") as root:
        with tracer.start_as_current_span("child1") as child1:
            child1.set_attribute("only.on.child1", "C1")
            child1.add_event("ev-c1")
        with tracer.start_as_current_span("child2", links=[trace.Link(child1.get_span_context())]):
            pass
        root.add_event("ev-root")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["child1", "child2", "root"]
    ids = {s.name: f"{s.context.span_id:016x}" for s in spans}
    return encode_spans(spans), ids


def test_measured_example_is_stored_as_cnosdb_stores_it(client):
    request, ids = sdk_export()
    table = ingest(client, request)
    got = select(client, f'''
        SELECT "{SP}name" AS name, "{SP}attributes/only.on.child1" AS attr, "{SP}Event_0/name" AS event,
               "{SP}Link_0/span_id" AS link, "{SP}parent_span_id" AS parent, "{SP}trace_state" AS state,
               "{SP}Status/code" AS code, "{SP}Status/message" AS message,
               "{SP}dropped_attributes_count" AS da, "{SP}dropped_events_count" AS de,
               "{SP}dropped_links_count" AS dl, "{SP}Event_0/dropped_attributes_count" AS eda
        FROM {table} ORDER BY "{SP}name"''', ("name", "attr", "event", "link", "parent", "state", "code",
                                              "message", "da", "de", "dl", "eda"))
    common = {"state": "", "code": "STATUS_CODE_UNSET", "message": "", "da": 0.0, "de": 0.0, "dl": 0.0,
              "eda": 0.0}
    assert got == [
        {"name": "child1", "attr": "C1", "event": "ev-c1", "link": None, "parent": ids["root"], **common},
        # child2 inherits child1's attribute and event
        {"name": "child2", "attr": "C1", "event": "ev-c1", "link": ids["child1"], "parent": ids["root"],
         **common},
        # root inherits the attribute and child2's link, keeps its own event, and has parent ""
        {"name": "root", "attr": "C1", "event": "ev-root", "link": ids["child1"], "parent": "", **common},
    ]
    # The empty strings are stored tag values (not nulls): they match `= ''`.
    roots = select(client, f'SELECT "{SP}name" AS name FROM {table} WHERE "{SP}parent_span_id" = \'\'', ("name",))
    assert roots == [{"name": "root"}]


def test_leak_crosses_scopes_but_not_resource_spans(client):
    request = ExportTraceServiceRequest()
    for r in range(2):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name").value.string_value = f"svc{r}"
        for s in range(2):
            scope_spans = resource_spans.scope_spans.add()
            if s == 0:
                scope_spans.scope.name = f"scope{r}"
            span = scope_spans.spans.add(trace_id=bytes(15) + b"\x01", span_id=bytes([0] * 7 + [r * 2 + s + 1]),
                                         name=f"r{r}s{s}", start_time_unix_nano=START,
                                         end_time_unix_nano=START + 10)
            if (r, s) == (0, 0):
                span.attributes.add(key="k").value.string_value = "v"
                span.events.add(time_unix_nano=START + 1, name="e")
                span.status.code = 2
    table = ingest(client, request)
    got = select(client, f'''
        SELECT "{SP}name" AS name, "{SC}name" AS scope, "{SP}attributes/k" AS k, "{SP}Event_0/name" AS event,
               "{SP}Status/code" AS code, "{SP}kind" AS kind
        FROM {table} ORDER BY "{SP}name"''', ("name", "scope", "k", "event", "code", "kind"))
    assert got == [
        {"name": "r0s0", "scope": "scope0", "k": "v", "event": "e", "code": "STATUS_CODE_ERROR",
         "kind": "SPAN_KIND_UNSPECIFIED"},
        # a later ScopeSpans without scope keeps the earlier scope's name, and the span columns leak too
        {"name": "r0s1", "scope": "scope0", "k": "v", "event": "e", "code": "STATUS_CODE_ERROR",
         "kind": "SPAN_KIND_UNSPECIFIED"},
        # the map is cleared per ResourceSpans
        {"name": "r1s0", "scope": "scope1", "k": None, "event": None, "code": None,
         "kind": "SPAN_KIND_UNSPECIFIED"},
        {"name": "r1s1", "scope": "scope1", "k": None, "event": None, "code": None,
         "kind": "SPAN_KIND_UNSPECIFIED"},
    ]


def test_later_span_overwrites_what_it_sets_itself(client):
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    first = scope_spans.spans.add(trace_id=bytes(15) + b"\x02", span_id=bytes(7) + b"\x01", name="a",
                                  start_time_unix_nano=START, end_time_unix_nano=START + 10)
    first.events.add(time_unix_nano=START + 1, name="a0")
    first.events.add(time_unix_nano=START + 2, name="a1")
    second = scope_spans.spans.add(trace_id=bytes(15) + b"\x02", span_id=bytes(7) + b"\x02", name="b",
                                   start_time_unix_nano=START + 5, end_time_unix_nano=START + 6)
    second.events.add(time_unix_nano=START + 7, name="b0")
    table = ingest(client, request)
    got = select(client, f'''
        SELECT "{SP}name" AS name, "{SP}Event_0/name" AS e0, "{SP}Event_1/name" AS e1,
               "{SP}Event_1/time_unix_nano" AS t1, "{SP}duration_nano" AS d
        FROM {table} ORDER BY "{SP}name"''', ("name", "e0", "e1", "t1", "d"))
    assert got == [
        {"name": "a", "e0": "a0", "e1": "a1", "t1": float(START + 2), "d": 10.0},
        {"name": "b", "e0": "b0", "e1": "a1", "t1": float(START + 2), "d": 1.0},
    ]
