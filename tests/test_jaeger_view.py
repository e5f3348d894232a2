"""`group_by_process`: the views of Jaeger spans grouped by process, and the resources it keeps across calls."""

from __future__ import annotations

from cnosdb_jaeger_storage.model.jaeger_otlp import group_by_process
from cnosdb_jaeger_storage.proto import model_pb2, resource_pb2

TRACE_ID = bytes(range(1, 17))
SPAN_ID = bytes(range(1, 9))


def _span(host: str) -> model_pb2.Span:
    span = model_pb2.Span(trace_id=TRACE_ID, span_id=SPAN_ID, operation_name="op")
    span.process.service_name = "shop"
    span.process.tags.add(key="host", v_str=host)
    return span


def _attributes(resource: resource_pb2.Resource) -> list[tuple[str, str]]:
    return [(kv.key, kv.value.string_value) for kv in resource.attributes]


def test_processes_that_differ_in_one_tag_value_keep_their_own_resource_across_calls() -> None:
    first, second, again = (group_by_process([_span(host)]) for host in ("a", "b", "a"))
    assert _attributes(first[0].resource) == [("service.name", "shop"), ("host", "a")]
    assert _attributes(second[0].resource) == [("service.name", "shop"), ("host", "b")]
    assert _attributes(again[0].resource) == [("service.name", "shop"), ("host", "a")]


def test_spans_of_processes_that_differ_in_one_tag_value_are_grouped_apart() -> None:
    groups = group_by_process([_span("a"), _span("b"), _span("a")])
    assert [_attributes(group.resource)[1] for group in groups] == [("host", "a"), ("host", "b")]
    assert [len(group.spans) for group in groups] == [2, 1]


def test_a_span_without_process_takes_the_batch_process() -> None:
    span = model_pb2.Span(trace_id=TRACE_ID, span_id=SPAN_ID)
    batch_process = _span("c").process
    (group,) = group_by_process([span], batch_process)
    assert _attributes(group.resource) == [("service.name", "shop"), ("host", "c")]
