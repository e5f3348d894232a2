"""The operations table: a point per (service, span name, kind, hour), sent once."""

from __future__ import annotations

from opentelemetry.proto.trace.v1 import trace_pb2

from cnosdb_jaeger_storage.cnosdb.operations_table import HOUR_NS, OperationsIndex

T0 = 1_700_000_000 * 10**9 // HOUR_NS * HOUR_NS


def resource_spans(service: str, *spans: tuple[str, int, int]) -> trace_pb2.ResourceSpans:
    rs = trace_pb2.ResourceSpans()
    rs.resource.attributes.add(key="service.name").value.string_value = service
    for name, kind, start in spans:
        rs.scope_spans.add().spans.add(name=name, kind=kind, start_time_unix_nano=start)
    return rs


def test_one_line_per_operation_and_hour_with_its_newest_start() -> None:
    index = OperationsIndex("jaeger_spans")
    lines, points = index.lines([resource_spans("svc", ("GET /", 2, T0 + 5), ("GET /", 2, T0 + 9),
                                                ("GET /", 3, T0 + 1), ("GET /", 2, T0 + HOUR_NS))])
    assert sorted(lines) == [
        f"jaeger_spans_operations,service=svc,name=GET\\ /,kind=SPAN_KIND_CLIENT last_start={T0 + 1}i {T0}",
        f"jaeger_spans_operations,service=svc,name=GET\\ /,kind=SPAN_KIND_SERVER last_start={T0 + 9}i {T0}",
        f"jaeger_spans_operations,service=svc,name=GET\\ /,kind=SPAN_KIND_SERVER last_start={T0 + HOUR_NS}i "
        f"{T0 + HOUR_NS}",
    ]
    assert len(points) == 3


def test_points_acknowledged_are_not_sent_again_until_forgotten() -> None:
    index = OperationsIndex("t")
    batch = [resource_spans("svc", ("op", 1, T0))]
    _, points = index.lines(batch)
    index.remember(points)
    assert index.lines(batch) == ([], [])
    index.forget()
    assert len(index.lines(batch)[0]) == 1


def test_names_are_escaped_and_an_empty_service_is_left_out() -> None:
    index = OperationsIndex("t")
    [line], _ = index.lines([resource_spans("", ("a,b=c d\\e", 0, T0))])
    assert line == f"t_operations,name=a\\,b\\=c\\ d\\\\e,kind=SPAN_KIND_UNSPECIFIED last_start={T0}i {T0}"
