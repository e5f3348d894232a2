"""Jaeger api_v2 ⇄ OTLP translation (docs/schema.md, "Jaeger ↔ OTLP")."""

from __future__ import annotations

import pytest
from conformance_cases import EXAMPLE, EXAMPLE_TRACE, TRACES
from google.protobuf import duration_pb2, timestamp_pb2

from cnosdb_jaeger_storage.model.jaeger_otlp import (
    jaeger_spans_to_resource_spans,
    otlp_span_to_jaeger,
    resource_spans_to_jaeger,
    resource_to_process,
)
from cnosdb_jaeger_storage.proto import common_pb2, model_pb2, resource_pb2, trace_pb2

M = model_pb2
Span = trace_pb2.Span
Status = trace_pb2.Status

TRACE_ID = bytes(range(1, 17))
SPAN_ID = bytes(range(1, 9))
PARENT_ID = bytes(range(11, 19))
OTHER_TRACE_ID = bytes(range(101, 117))
OTHER_SPAN_ID = bytes(range(21, 29))
REF_TYPE = "opentracing.ref_type"

HOSTILE = [
    'double "quotes" and \'single\'',
    "back\\slash \\n not a newline \\",
    "new\nline, carriage\rreturn, tab\t",
    "unicode: héllo wörld 日本語 🚀 \u200b",
    "line=protocol, special chars",
    "",
]


# -- helpers -------------------------------------------------------------------------------------------


def _sort_kvs(kvs) -> None:
    kvs.sort(key=lambda kv: (kv.key, kv.SerializeToString(deterministic=True)))


def canonical(span: model_pb2.Span) -> model_pb2.Span:
    """`span` with tags, process tags and log fields sorted: their order carries no meaning."""
    out = model_pb2.Span()
    out.CopyFrom(span)
    _sort_kvs(out.tags)
    _sort_kvs(out.process.tags)
    for log in out.logs:
        _sort_kvs(log.fields)
    return out


def jaeger_span(**kwargs) -> model_pb2.Span:
    kwargs.setdefault("trace_id", TRACE_ID)
    kwargs.setdefault("span_id", SPAN_ID)
    kwargs.setdefault("operation_name", "op")
    kwargs.setdefault("start_time", timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=123_456_789))
    kwargs.setdefault("duration", duration_pb2.Duration(seconds=1, nanos=5))
    kwargs.setdefault("process", M.Process(service_name="svc"))
    return M.Span(**kwargs)


def to_otlp(span: model_pb2.Span) -> trace_pb2.Span:
    (rs,) = jaeger_spans_to_resource_spans([span])
    (ss,) = rs.scope_spans
    (otlp,) = ss.spans
    return otlp


def round_trip(span: model_pb2.Span) -> model_pb2.Span:
    (back,) = resource_spans_to_jaeger(jaeger_spans_to_resource_spans([span]))
    return back


def otlp_span(**kwargs) -> trace_pb2.Span:
    kwargs.setdefault("trace_id", TRACE_ID)
    kwargs.setdefault("span_id", SPAN_ID)
    kwargs.setdefault("name", "op")
    kwargs.setdefault("start_time_unix_nano", 1_700_000_000_000_000_000)
    kwargs.setdefault("end_time_unix_nano", 1_700_000_000_000_001_000)
    return Span(**kwargs)


def to_jaeger(span: trace_pb2.Span, scope: common_pb2.InstrumentationScope | None = None) -> model_pb2.Span:
    resource = resource_pb2.Resource(attributes=[attr("service.name", "svc")])
    return otlp_span_to_jaeger(span, resource, scope or common_pb2.InstrumentationScope())


def attr(key: str, value) -> common_pb2.KeyValue:
    if isinstance(value, bool):
        any_value = common_pb2.AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = common_pb2.AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = common_pb2.AnyValue(double_value=value)
    elif isinstance(value, bytes):
        any_value = common_pb2.AnyValue(bytes_value=value)
    elif isinstance(value, common_pb2.AnyValue):
        any_value = value
    else:
        any_value = common_pb2.AnyValue(string_value=value)
    return common_pb2.KeyValue(key=key, value=any_value)


def s_tag(key: str, value: str) -> model_pb2.KeyValue:
    return M.KeyValue(key=key, v_type=M.STRING, v_str=value)


def log(fields, seconds: int = 1_700_000_000) -> model_pb2.Log:
    # Jaeger (gogo, non-nullable) always sends a log's timestamp.
    return M.Log(timestamp=timestamp_pb2.Timestamp(seconds=seconds), fields=fields)


def b_tag(key: str, value: bool) -> model_pb2.KeyValue:
    return M.KeyValue(key=key, v_type=M.BOOL, v_bool=value)


def tag_dict(tags) -> dict[str, object]:
    out = {}
    for t in tags:
        values = {M.STRING: t.v_str, M.BOOL: t.v_bool, M.INT64: t.v_int64, M.FLOAT64: t.v_float64}
        out[t.key] = t.v_binary if t.v_type == M.BINARY else values[t.v_type]
    return out


def attr_keys(span: trace_pb2.Span) -> list[str]:
    return [a.key for a in span.attributes]


# -- the conformance traces round-trip (tests/conformance_cases.py; Jaeger's own fixtures: make e2e) ---------------

CONFORMANCE_TRACES = {**TRACES, EXAMPLE: EXAMPLE_TRACE}


@pytest.mark.parametrize("name", sorted(CONFORMANCE_TRACES))
def test_conformance_trace_round_trip(name):
    trace = CONFORMANCE_TRACES[name]
    assert trace.spans
    back = resource_spans_to_jaeger(jaeger_spans_to_resource_spans(trace.spans))
    assert len(back) == len(trace.spans)
    # resource_spans_to_jaeger groups spans by process; compare as multisets.
    want = sorted(canonical(s).SerializeToString(deterministic=True) for s in trace.spans)
    got = sorted(canonical(s).SerializeToString(deterministic=True) for s in back)
    assert got == want


def test_conformance_traces_hold_every_value_type_flags_warnings_and_references():
    spans = [s for t in CONFORMANCE_TRACES.values() for s in t.spans]
    values = [kv for s in spans for kv in (*s.tags, *s.process.tags, *(f for log in s.logs for f in log.fields))]
    assert {kv.v_type for kv in values} == {M.STRING, M.BOOL, M.INT64, M.FLOAT64, M.BINARY}
    assert {s.flags for s in spans} >= {0, 1, 2, 3}
    assert any(s.warnings for s in spans)
    assert {r.ref_type for s in spans for r in s.references} == {M.CHILD_OF, M.FOLLOWS_FROM}
    assert len(CONFORMANCE_TRACES) >= 29


# -- Jaeger → OTLP, rule by rule ----------------------------------------------------------------------


def test_process_becomes_resource():
    span = jaeger_span(process=M.Process(service_name="checkout", tags=[s_tag("host", "h1")]))
    (rs,) = jaeger_spans_to_resource_spans([span])
    assert [(a.key, a.value.string_value) for a in rs.resource.attributes] == [
        ("service.name", "checkout"),
        ("host", "h1"),
    ]
    (ss,) = rs.scope_spans
    assert ss.HasField("scope")
    assert ss.scope == common_pb2.InstrumentationScope()


def test_spans_sharing_a_process_share_a_resource():
    p1 = M.Process(service_name="a", tags=[s_tag("k", "v")])
    p2 = M.Process(service_name="b")
    spans = [jaeger_span(span_id=bytes([0] * 7 + [i]), process=p) for i, p in enumerate([p1, p2, p1, p2, p1])]
    out = jaeger_spans_to_resource_spans(spans)
    assert [len(rs.scope_spans[0].spans) for rs in out] == [3, 2]
    assert [rs.resource.attributes[0].value.string_value for rs in out] == ["a", "b"]
    assert [s.span_id[-1] for s in out[0].scope_spans[0].spans] == [0, 2, 4]


def test_batch_process_is_the_fallback():
    batch_process = M.Process(service_name="batch")
    spans = [M.Span(trace_id=TRACE_ID, span_id=SPAN_ID), jaeger_span(process=M.Process(service_name="own"))]
    out = jaeger_spans_to_resource_spans(spans, batch_process)
    assert [rs.resource.attributes[0].value.string_value for rs in out] == ["batch", "own"]
    back = resource_spans_to_jaeger(out)
    assert back[0].process.service_name == "batch"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("client", Span.SPAN_KIND_CLIENT),
        ("server", Span.SPAN_KIND_SERVER),
        ("producer", Span.SPAN_KIND_PRODUCER),
        ("consumer", Span.SPAN_KIND_CONSUMER),
        ("internal", Span.SPAN_KIND_INTERNAL),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_span_kind_tag_becomes_kind(value, kind):
    otlp = to_otlp(jaeger_span(tags=[s_tag("span.kind", value), s_tag("x", "y")]))
    assert otlp.kind == kind
    assert attr_keys(otlp) == ["x"]
    assert tag_dict(to_jaeger(otlp).tags)["span.kind"] == value


@pytest.mark.parametrize(
    "tag",
    [s_tag("span.kind", "SERVER"), s_tag("span.kind", "rpc"), b_tag("span.kind", True)],
    ids=["uppercase", "unknown", "not-a-string"],
)
def test_unknown_span_kind_stays_a_tag(tag):
    otlp = to_otlp(jaeger_span(tags=[tag]))
    assert otlp.kind == Span.SPAN_KIND_UNSPECIFIED
    assert attr_keys(otlp) == ["span.kind"]
    assert canonical(round_trip(jaeger_span(tags=[tag]))) == canonical(jaeger_span(tags=[tag]))


@pytest.mark.parametrize(
    ("tags", "code", "message"),
    [
        ([b_tag("error", True)], Status.STATUS_CODE_ERROR, ""),
        ([s_tag("error", "true")], Status.STATUS_CODE_ERROR, ""),
        ([b_tag("error", False)], Status.STATUS_CODE_UNSET, ""),
        ([s_tag("error", "yes")], Status.STATUS_CODE_UNSET, ""),
        ([s_tag("otel.status_code", "OK")], Status.STATUS_CODE_OK, ""),
        ([s_tag("otel.status_code", "ERROR")], Status.STATUS_CODE_ERROR, ""),
        ([s_tag("otel.status_code", "bogus")], Status.STATUS_CODE_UNSET, ""),
        (
            [s_tag("otel.status_code", "ERROR"), s_tag("otel.status_description", "boom")],
            Status.STATUS_CODE_ERROR,
            "boom",
        ),
        ([b_tag("error", True), s_tag("otel.status_code", "OK")], Status.STATUS_CODE_OK, ""),
        ([b_tag("error", True), s_tag("otel.status_description", "bad")], Status.STATUS_CODE_ERROR, "bad"),
        ([s_tag("otel.status_description", "only")], Status.STATUS_CODE_UNSET, "only"),
        ([], Status.STATUS_CODE_UNSET, ""),
    ],
    ids=[
        "error-bool",
        "error-string",
        "error-false",
        "error-other-string",
        "status-ok",
        "status-error",
        "status-bogus",
        "status-error-description",
        "status-code-wins-over-error",
        "error-with-description",
        "description-only",
        "none",
    ],
)
def test_status_tags_set_status_and_stay(tags, code, message):
    span = jaeger_span(tags=tags)
    otlp = to_otlp(span)
    assert otlp.status.code == code
    assert otlp.status.message == message
    assert otlp.HasField("status") == bool(code or message)
    assert attr_keys(otlp) == [t.key for t in tags]
    assert canonical(round_trip(span)) == canonical(span)


def test_first_child_of_in_the_trace_is_the_parent():
    refs = [
        M.SpanRef(trace_id=OTHER_TRACE_ID, span_id=OTHER_SPAN_ID, ref_type=M.CHILD_OF),
        M.SpanRef(trace_id=TRACE_ID, span_id=PARENT_ID, ref_type=M.FOLLOWS_FROM),
        M.SpanRef(trace_id=TRACE_ID, span_id=PARENT_ID, ref_type=M.CHILD_OF),
        M.SpanRef(trace_id=TRACE_ID, span_id=OTHER_SPAN_ID, ref_type=M.CHILD_OF),
    ]
    otlp = to_otlp(jaeger_span(references=refs))
    assert otlp.parent_span_id == PARENT_ID
    assert [(lk.trace_id, lk.span_id, tag_dict_of_attrs(lk.attributes)) for lk in otlp.links] == [
        (OTHER_TRACE_ID, OTHER_SPAN_ID, {"opentracing.ref_type": "child_of"}),
        (TRACE_ID, PARENT_ID, {"opentracing.ref_type": "follows_from"}),
        (TRACE_ID, OTHER_SPAN_ID, {"opentracing.ref_type": "child_of"}),
    ]
    # On the way back the parent comes first.
    back = to_jaeger(otlp)
    assert list(back.references) == [refs[2], refs[0], refs[1], refs[3]]


def tag_dict_of_attrs(attrs) -> dict[str, str]:
    return {a.key: a.value.string_value for a in attrs}


@pytest.mark.parametrize(
    "refs",
    [
        [],
        [M.SpanRef(trace_id=TRACE_ID, span_id=PARENT_ID, ref_type=M.CHILD_OF)],
        [M.SpanRef(trace_id=TRACE_ID, span_id=PARENT_ID, ref_type=M.FOLLOWS_FROM)],
        [
            M.SpanRef(trace_id=TRACE_ID, span_id=PARENT_ID, ref_type=M.CHILD_OF),
            M.SpanRef(trace_id=OTHER_TRACE_ID, span_id=OTHER_SPAN_ID, ref_type=M.FOLLOWS_FROM),
            M.SpanRef(trace_id=TRACE_ID, span_id=OTHER_SPAN_ID, ref_type=M.CHILD_OF),
        ],
    ],
    ids=["none", "parent", "follows-from-only", "parent-then-others"],
)
def test_references_round_trip(refs):
    span = jaeger_span(references=refs)
    assert round_trip(span) == span


def test_logs_become_events():
    logs = [
        M.Log(
            timestamp=timestamp_pb2.Timestamp(seconds=1_700_000_001, nanos=7),
            fields=[s_tag("level", "info"), s_tag("event", "cache miss")],
        ),
        M.Log(timestamp=timestamp_pb2.Timestamp(seconds=1_700_000_002), fields=[s_tag("message", "m")]),
        M.Log(timestamp=timestamp_pb2.Timestamp(seconds=1_700_000_003)),
        log([M.KeyValue(key="event", v_type=M.INT64, v_int64=5)], seconds=0),
    ]
    span = jaeger_span(logs=logs)
    otlp = to_otlp(span)
    assert [(e.time_unix_nano, e.name, [a.key for a in e.attributes]) for e in otlp.events] == [
        (1_700_000_001_000_000_007, "cache miss", ["level", "event"]),
        (1_700_000_002_000_000_000, "", ["message"]),
        (1_700_000_003_000_000_000, "", []),
        (0, "", ["event"]),  # a non-string `event` names nothing
    ]
    assert canonical(round_trip(span)) == canonical(span)


def test_warnings_become_an_array_attribute():
    span = jaeger_span(warnings=["clock skew", "second"])
    otlp = to_otlp(span)
    (warn,) = otlp.attributes
    assert warn.key == "@jaeger@warnings"
    assert [v.string_value for v in warn.value.array_value.values] == ["clock skew", "second"]
    assert round_trip(span) == span


def test_flags_and_times():
    span = jaeger_span(
        flags=3,
        start_time=timestamp_pb2.Timestamp(seconds=1_500_000_000, nanos=999_999_999),
        duration=duration_pb2.Duration(seconds=2, nanos=1),
    )
    otlp = to_otlp(span)
    assert otlp.flags == 3
    assert otlp.start_time_unix_nano == 1_500_000_000_999_999_999
    assert otlp.end_time_unix_nano == 1_500_000_003_000_000_000
    assert round_trip(span) == span


@pytest.mark.parametrize(
    ("tag", "field", "value"),
    [
        (M.KeyValue(key="k", v_type=M.STRING, v_str="v"), "string_value", "v"),
        (M.KeyValue(key="k", v_type=M.BOOL, v_bool=True), "bool_value", True),
        (M.KeyValue(key="k", v_type=M.BOOL, v_bool=False), "bool_value", False),
        (M.KeyValue(key="k", v_type=M.INT64, v_int64=-(2**63)), "int_value", -(2**63)),
        (M.KeyValue(key="k", v_type=M.INT64, v_int64=0), "int_value", 0),
        (M.KeyValue(key="k", v_type=M.FLOAT64, v_float64=72.5), "double_value", 72.5),
        (M.KeyValue(key="k", v_type=M.FLOAT64, v_float64=float("inf")), "double_value", float("inf")),
        (M.KeyValue(key="k", v_type=M.BINARY, v_binary=b"\x00\xff"), "bytes_value", b"\x00\xff"),
        (M.KeyValue(key="k", v_type=M.BINARY), "bytes_value", b""),
    ],
    ids=["str", "true", "false", "int-min", "int-zero", "double", "inf", "binary", "binary-empty"],
)
def test_typed_values(tag, field, value):
    for span in (jaeger_span(tags=[tag]), jaeger_span(process=M.Process(service_name="s", tags=[tag]))):
        (rs,) = jaeger_spans_to_resource_spans([span])
        attrs = rs.scope_spans[0].spans[0].attributes if span.tags else rs.resource.attributes[1:]
        (a,) = attrs
        assert a.value.WhichOneof("value") == field
        assert getattr(a.value, field) == value
        assert round_trip(span) == span
    log_span = jaeger_span(logs=[log([tag])])
    assert to_otlp(log_span).events[0].attributes[0].value.WhichOneof("value") == field
    assert round_trip(log_span) == log_span


def test_tracestate_tag_sets_trace_state():
    span = jaeger_span(tags=[s_tag("w3c.tracestate", "vendor=v1")])
    otlp = to_otlp(span)
    assert otlp.trace_state == "vendor=v1"
    assert attr_keys(otlp) == ["w3c.tracestate"]
    assert round_trip(span) == span


@pytest.mark.parametrize(
    ("trace_id", "want"),
    [(TRACE_ID, TRACE_ID), (bytes(range(1, 9)), bytes(8) + bytes(range(1, 9)))],
    ids=["16-bytes", "8-bytes"],
)
def test_trace_id_widths(trace_id, want):
    span = jaeger_span(
        trace_id=trace_id, references=[M.SpanRef(trace_id=trace_id, span_id=PARENT_ID, ref_type=M.CHILD_OF)]
    )
    otlp = to_otlp(span)
    assert otlp.trace_id == want
    assert otlp.parent_span_id == PARENT_ID  # the 8-byte reference matched its padded span
    back = round_trip(span)
    assert back.trace_id == want
    assert back.references[0].trace_id == want


@pytest.mark.parametrize(
    "span",
    [
        jaeger_span(trace_id=b"\x01" * 12),
        jaeger_span(trace_id=b""),
        jaeger_span(span_id=b"\x01" * 4),
        jaeger_span(references=[M.SpanRef(trace_id=TRACE_ID, span_id=b"\x01")]),
        jaeger_span(references=[M.SpanRef(trace_id=b"\x01" * 3, span_id=PARENT_ID)]),
    ],
    ids=["trace-12", "trace-empty", "span-4", "ref-span-1", "ref-trace-3"],
)
def test_invalid_ids_are_rejected(span):
    with pytest.raises(ValueError, match="invalid"):
        jaeger_spans_to_resource_spans([span])


@pytest.mark.parametrize("text", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_strings_pass_through(text):
    span = jaeger_span(
        operation_name=text,
        process=M.Process(service_name=text or "svc", tags=[s_tag(text, text)]),
        tags=[s_tag(text, text), s_tag("event", text), s_tag("otel.status_description", text)],
        logs=[log([s_tag("event", text), s_tag(text, text)])],
        warnings=[text],
    )
    otlp = to_otlp(span)
    assert otlp.name == text
    assert otlp.attributes[0].key == text
    assert otlp.attributes[0].value.string_value == text
    assert otlp.events[0].name == text
    assert canonical(round_trip(span)) == canonical(span)


def test_everything_round_trips():
    span = jaeger_span(
        flags=1,
        references=[
            M.SpanRef(trace_id=TRACE_ID, span_id=PARENT_ID, ref_type=M.CHILD_OF),
            M.SpanRef(trace_id=OTHER_TRACE_ID, span_id=OTHER_SPAN_ID, ref_type=M.CHILD_OF),
            M.SpanRef(trace_id=OTHER_TRACE_ID, span_id=PARENT_ID, ref_type=M.FOLLOWS_FROM),
        ],
        tags=[
            s_tag("span.kind", "client"),
            b_tag("error", True),
            s_tag("otel.status_code", "ERROR"),
            s_tag("otel.status_description", "boom"),
            s_tag("w3c.tracestate", "a=b"),
            M.KeyValue(key="n", v_type=M.INT64, v_int64=42),
            M.KeyValue(key="f", v_type=M.FLOAT64, v_float64=-0.5),
            M.KeyValue(key="b", v_type=M.BINARY, v_binary=b"\x01"),
            s_tag("event", "not a log"),
            s_tag("otel.scope.name", "kept"),
        ],
        logs=[log([s_tag("event", "e"), b_tag("x", False)], seconds=5)],
        process=M.Process(service_name="svc", tags=[s_tag("service.name", "dup"), b_tag("p", True)]),
        warnings=["w1"],
    )
    back = round_trip(span)
    assert canonical(back) == canonical(span)
    assert back.process_id == ""


# -- OTLP → Jaeger, rule by rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "attrs", "want"),
    [
        (Status(code=Status.STATUS_CODE_ERROR), [], {"error": True, "otel.status_code": "ERROR"}),
        (
            Status(code=Status.STATUS_CODE_ERROR, message="boom"),
            [],
            {"error": True, "otel.status_code": "ERROR", "otel.status_description": "boom"},
        ),
        (Status(code=Status.STATUS_CODE_OK), [], {"otel.status_code": "OK"}),
        (Status(), [], {}),
        (None, [], {}),
        (Status(code=Status.STATUS_CODE_ERROR), [attr("error", True)], {"error": True}),
        (
            Status(code=Status.STATUS_CODE_ERROR),
            [attr("otel.status_code", "ERROR")],
            {"otel.status_code": "ERROR"},
        ),
        (
            Status(code=Status.STATUS_CODE_ERROR),
            [attr("error", False)],
            {"error": False, "otel.status_code": "ERROR"},
        ),
        (
            Status(code=Status.STATUS_CODE_OK, message="m"),
            [attr("otel.status_description", "own")],
            {"otel.status_code": "OK", "otel.status_description": "own"},
        ),
    ],
    ids=[
        "error",
        "error-message",
        "ok",
        "unset",
        "no-status",
        "error-attribute-present",
        "status-code-attribute-present",
        "error-false-attribute",
        "description-attribute-present",
    ],
)
def test_status_becomes_tags(status, attrs, want):
    span = otlp_span(attributes=attrs, status=status)
    got = to_jaeger(span)
    assert tag_dict(got.tags) == want
    assert len(got.tags) == len(want)


@pytest.mark.parametrize(
    ("kind", "want"),
    [
        (Span.SPAN_KIND_SERVER, "server"),
        (Span.SPAN_KIND_CLIENT, "client"),
        (Span.SPAN_KIND_PRODUCER, "producer"),
        (Span.SPAN_KIND_CONSUMER, "consumer"),
        (Span.SPAN_KIND_INTERNAL, "internal"),
        (Span.SPAN_KIND_UNSPECIFIED, None),
    ],
    ids=["server", "client", "producer", "consumer", "internal", "unspecified"],
)
def test_kind_becomes_span_kind_tag(kind, want):
    tags = tag_dict(to_jaeger(otlp_span(kind=kind)).tags)
    assert tags.get("span.kind") == want


def test_links_become_references():
    span = otlp_span(
        parent_span_id=PARENT_ID,
        links=[
            Span.Link(trace_id=OTHER_TRACE_ID, span_id=OTHER_SPAN_ID),
            Span.Link(trace_id=OTHER_TRACE_ID, span_id=PARENT_ID, attributes=[attr(REF_TYPE, "child_of")]),
            Span.Link(trace_id=TRACE_ID, span_id=OTHER_SPAN_ID, attributes=[attr(REF_TYPE, "follows_from")]),
            Span.Link(trace_id=TRACE_ID, span_id=OTHER_SPAN_ID, attributes=[attr("other", "x")]),
        ],
    )
    assert list(to_jaeger(span).references) == [
        M.SpanRef(trace_id=TRACE_ID, span_id=PARENT_ID, ref_type=M.CHILD_OF),
        M.SpanRef(trace_id=OTHER_TRACE_ID, span_id=OTHER_SPAN_ID, ref_type=M.FOLLOWS_FROM),
        M.SpanRef(trace_id=OTHER_TRACE_ID, span_id=PARENT_ID, ref_type=M.CHILD_OF),
        M.SpanRef(trace_id=TRACE_ID, span_id=OTHER_SPAN_ID, ref_type=M.FOLLOWS_FROM),
        M.SpanRef(trace_id=TRACE_ID, span_id=OTHER_SPAN_ID, ref_type=M.FOLLOWS_FROM),
    ]


@pytest.mark.parametrize(
    ("scope", "want"),
    [
        (
            common_pb2.InstrumentationScope(name="lib", version="1.2"),
            {"otel.scope.name": "lib", "otel.scope.version": "1.2"},
        ),
        (common_pb2.InstrumentationScope(name="lib"), {"otel.scope.name": "lib"}),
        (common_pb2.InstrumentationScope(version="1.2"), {"otel.scope.version": "1.2"}),
        (common_pb2.InstrumentationScope(), {}),
    ],
    ids=["name-version", "name", "version", "empty"],
)
def test_scope_becomes_tags(scope, want):
    assert tag_dict(to_jaeger(otlp_span(), scope).tags) == want


@pytest.mark.parametrize(
    ("trace_state", "attrs", "want"),
    [
        ("a=b,c=d", [], {"w3c.tracestate": "a=b,c=d"}),
        ("", [], {}),
        ("a=b", [attr("w3c.tracestate", "own")], {"w3c.tracestate": "own"}),
    ],
    ids=["set", "empty", "attribute-present"],
)
def test_trace_state_becomes_tag(trace_state, attrs, want):
    got = to_jaeger(otlp_span(trace_state=trace_state, attributes=attrs))
    assert tag_dict(got.tags) == want
    assert len(got.tags) == len(want)


@pytest.mark.parametrize(
    ("event", "want"),
    [
        (Span.Event(name="exception", attributes=[attr("a", "b")]), [("a", "b"), ("event", "exception")]),
        (Span.Event(name="n", attributes=[attr("event", "own")]), [("event", "own")]),
        (Span.Event(attributes=[attr("a", "b")]), [("a", "b")]),
        (Span.Event(), []),
    ],
    ids=["name", "event-attribute-present", "no-name", "empty"],
)
def test_events_become_logs(event, want):
    event.time_unix_nano = 1_700_000_000_000_000_001
    (log,) = to_jaeger(otlp_span(events=[event])).logs
    assert [(f.key, f.v_str) for f in log.fields] == want
    assert (log.timestamp.seconds, log.timestamp.nanos) == (1_700_000_000, 1)


def test_array_and_kvlist_become_json_strings():
    array = common_pb2.AnyValue(
        array_value=common_pb2.ArrayValue(
            values=[common_pb2.AnyValue(string_value="a\"é"), common_pb2.AnyValue(int_value=5)]
        )
    )
    kvlist = common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[attr("k", True)]))
    tags = {t.key: t for t in to_jaeger(otlp_span(attributes=[attr("arr", array), attr("kv", kvlist)])).tags}
    assert tags["arr"].v_type == M.STRING
    assert tags["arr"].v_str == '["a\\"é",5]'  # as OpenTelemetry's Value.AsString and Jaeger show it
    assert tags["kv"].v_str == '{"k":true}'


def test_empty_value_becomes_empty_string_tag():
    (tag,) = to_jaeger(otlp_span(attributes=[common_pb2.KeyValue(key="k")])).tags
    assert tag == s_tag("k", "")


def test_warnings_attribute():
    warnings = common_pb2.AnyValue(
        array_value=common_pb2.ArrayValue(values=[common_pb2.AnyValue(string_value="w")])
    )
    got = to_jaeger(otlp_span(attributes=[attr("@jaeger@warnings", warnings)]))
    assert list(got.warnings) == ["w"]
    assert not got.tags
    # Not an array: an ordinary tag.
    got = to_jaeger(otlp_span(attributes=[attr("@jaeger@warnings", "x")]))
    assert not got.warnings
    assert tag_dict(got.tags) == {"@jaeger@warnings": "x"}


def test_process_is_populated():
    resource = resource_pb2.Resource(
        attributes=[attr("host", "h"), attr("service.name", "svc"), attr("n", 1)]
    )
    scope = common_pb2.InstrumentationScope()
    got = otlp_span_to_jaeger(otlp_span(), resource, scope)
    assert got.HasField("process")
    assert got.process.service_name == "svc"
    assert tag_dict(got.process.tags) == {"host": "h", "n": 1}
    assert got.process_id == ""
    assert resource_to_process(resource_pb2.Resource()) == M.Process()
    # A process built once can be passed in.
    process = M.Process(service_name="given")
    assert otlp_span_to_jaeger(otlp_span(), resource, scope, process=process).process == process


@pytest.mark.parametrize(
    ("start", "end", "seconds", "nanos"),
    [
        (1_000_000_000_5, 1_000_000_001_5, 0, 10),
        (3_000_000_001, 5_500_000_000, 2, 499_999_999),
        (5_000, 0, 0, 0),
        (5_000, 4_000, 0, -1_000),
        (3_000_000_000, 1_000_000_000, -2, 0),
    ],
    ids=["short", "long", "no-end", "end-before-start", "end-before-start-seconds"],
)
def test_durations(start, end, seconds, nanos):
    got = to_jaeger(otlp_span(start_time_unix_nano=start, end_time_unix_nano=end))
    assert (got.duration.seconds, got.duration.nanos) == (seconds, nanos)
    assert got.start_time.seconds * 10**9 + got.start_time.nanos == start


def test_resource_spans_to_jaeger_keeps_order_and_scopes():
    resource_spans = [
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[attr("service.name", "a")]),
            scope_spans=[
                trace_pb2.ScopeSpans(
                    scope=common_pb2.InstrumentationScope(name="s1"),
                    spans=[otlp_span(name="1"), otlp_span(name="2")],
                ),
                trace_pb2.ScopeSpans(spans=[otlp_span(name="3")]),
            ],
        ),
        trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[otlp_span(name="4")])]),
    ]
    got = resource_spans_to_jaeger(resource_spans)
    assert [(s.operation_name, s.process.service_name, tag_dict(s.tags)) for s in got] == [
        ("1", "a", {"otel.scope.name": "s1"}),
        ("2", "a", {"otel.scope.name": "s1"}),
        ("3", "a", {}),
        ("4", "", {}),
    ]


def test_generated_v2_stubs_share_otlp_descriptors():
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    from cnosdb_jaeger_storage.proto import trace_service_pb2 as reexported
    from cnosdb_jaeger_storage.proto import trace_storage_pb2

    method = trace_storage_pb2.DESCRIPTOR.services_by_name["TraceReader"].methods_by_name["GetTraces"]
    assert method.output_type is trace_pb2.TracesData.DESCRIPTOR
    assert reexported is trace_service_pb2
