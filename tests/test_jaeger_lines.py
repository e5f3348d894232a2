"""Jaeger spans straight to line protocol (`Encoder.encode_jaeger`, `TraceStore.write_jaeger`) against the way
round OTLP (`jaeger_spans_to_resource_spans`, then `Encoder.encode`, `TraceStore.write`).

Property: for any Jaeger spans, under any attribute budget and whatever the encoders' caches hold, both ways
give the same lines, character for character, the same overflow counts, the same columns known to the budget,
the same operations-table lines, the same refusals (message included) and the same answer of the store.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import EXAMPLES, names

from cnosdb_jaeger_storage.cnosdb.line_protocol import AttributeBudget, Encoder
from cnosdb_jaeger_storage.cnosdb.operations_table import OperationsIndex, service_of
from cnosdb_jaeger_storage.cnosdb.quoting import check_span_list, check_spans
from cnosdb_jaeger_storage.errors import InvalidValue, StorageError
from cnosdb_jaeger_storage.model import vocabulary
from cnosdb_jaeger_storage.model.jaeger_otlp import (
    group_by_process,
    jaeger_spans_to_resource_spans,
)
from cnosdb_jaeger_storage.proto import model_pb2
from cnosdb_jaeger_storage.storage.store import Target, TraceStore

PROPERTY = settings(max_examples=max(EXAMPLES * 8, 200), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TABLE = "jaeger_spans"

# Keys the translation looks at, keys that collide with them, and any other key.
KEYS = st.one_of(st.sampled_from([
    vocabulary.SPAN_KIND, vocabulary.ERROR, vocabulary.STATUS_CODE, vocabulary.STATUS_DESCRIPTION,
    vocabulary.TRACE_STATE, vocabulary.EVENT, vocabulary.WARNINGS, vocabulary.SERVICE_NAME, vocabulary.REF_TYPE,
    "http.status_code", "k"]), names)
# Values of the special tags that mean something, and others.
TEXTS = st.one_of(st.sampled_from(["client", "server", "producer", "consumer", "internal", "CLIENT", "OK", "ERROR",
                                   "UNSET", "true", "false", ""]), names)
SECONDS = st.one_of(st.integers(-(2**40), 2**40), st.integers(1_600_000_000, 1_800_000_000),
                    st.sampled_from([0, 9_223_372_036, 9_223_372_037, 2**63 // 10**9 + 1, -1]))
NANOS = st.integers(-(10**9), 10**9)
SPAN_IDS = st.one_of(st.binary(min_size=8, max_size=8), st.sampled_from([bytes(8), b"\x01" * 8]))
TRACE_IDS = st.one_of(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8),
                      st.sampled_from([bytes(16), b"\x00" * 8 + b"\x07" * 8, b"\x07" * 8]))


@st.composite
def key_values(draw: st.DrawFn) -> model_pb2.KeyValue:
    kv = model_pb2.KeyValue(key=draw(KEYS))
    v_type = draw(st.sampled_from([model_pb2.STRING] * 4 + [model_pb2.BOOL, model_pb2.INT64, model_pb2.FLOAT64,
                                                            model_pb2.BINARY, 7]))
    kv.v_type = v_type  # type: ignore[assignment]  # 7: a type this model does not know
    if v_type in (model_pb2.STRING, 7):
        kv.v_str = draw(TEXTS)
    elif v_type == model_pb2.BOOL:
        kv.v_bool = draw(st.booleans())
    elif v_type == model_pb2.INT64:
        kv.v_int64 = draw(st.integers(-(2**63), 2**63 - 1))
    elif v_type == model_pb2.FLOAT64:
        kv.v_float64 = draw(st.floats())
    else:
        kv.v_binary = draw(st.binary(max_size=6))
    if draw(st.integers(0, 5)) == 0:  # a field of another type set too: only `v_type` says which counts
        kv.v_str = draw(TEXTS)
    return kv


@st.composite
def processes(draw: st.DrawFn) -> model_pb2.Process:
    return model_pb2.Process(service_name=draw(st.sampled_from(["", "svc", "other"]) | names),
                             tags=draw(st.lists(key_values(), max_size=3)))


@st.composite
def jaeger_spans(draw: st.DrawFn, trace_ids: Any = TRACE_IDS, span_ids: Any = SPAN_IDS) -> model_pb2.Span:
    trace_id = draw(trace_ids)
    span = model_pb2.Span(trace_id=trace_id, span_id=draw(span_ids), operation_name=draw(names),
                          flags=draw(st.integers(0, 2**32 - 1)), tags=draw(st.lists(key_values(), max_size=6)),
                          warnings=draw(st.lists(names, max_size=2)))
    span.start_time.seconds, span.start_time.nanos = draw(SECONDS), draw(NANOS) % 10**9
    span.duration.seconds, span.duration.nanos = draw(SECONDS), draw(NANOS)
    for _ in range(draw(st.integers(0, 3))):
        ref = span.references.add(trace_id=draw(st.sampled_from([trace_id]) | trace_ids), span_id=draw(span_ids))
        ref.ref_type = draw(st.sampled_from([model_pb2.CHILD_OF, model_pb2.FOLLOWS_FROM, 5]))  # type: ignore
    for _ in range(draw(st.integers(0, 3))):
        log = span.logs.add(fields=draw(st.lists(key_values(), max_size=3)))
        log.timestamp.seconds, log.timestamp.nanos = draw(SECONDS), draw(NANOS) % 10**9
    if draw(st.booleans()):
        span.process.CopyFrom(draw(processes()))
    return span


budgets = st.tuples(st.none() | st.integers(0, 4), st.none() | st.integers(0, 6))
batches = st.lists(st.lists(jaeger_spans(), max_size=4), min_size=1, max_size=3)


def _outcome(run: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", run(*args)
    except (ValueError, StorageError) as exc:
        return type(exc).__name__, str(exc)


@PROPERTY
@given(batches=batches, budget=budgets)
def test_direct_lines_are_the_lines_through_otlp(batches: list[list[model_pb2.Span]],
                                                  budget: tuple[int | None, int | None]) -> None:
    # One encoder per way, kept across the batches: what one batch leaves in the caches and the budget must
    # not make the ways part.
    through_otlp, direct = Encoder(AttributeBudget(*budget)), Encoder(AttributeBudget(*budget))
    index_otlp, index_direct = OperationsIndex(TABLE), OperationsIndex(TABLE)
    for spans in batches:
        want = _outcome(_through_otlp, through_otlp, index_otlp, spans)
        got = _outcome(_direct, direct, index_direct, spans)
        assert got == want
        assert direct.budget.known == through_otlp.budget.known


def _through_otlp(encoder: Encoder, index: OperationsIndex, spans: list[model_pb2.Span]) -> Any:
    resource_spans = jaeger_spans_to_resource_spans(spans)
    check_spans(resource_spans)
    lines = encoder.encode(TABLE, resource_spans)
    operations = index.lines(resource_spans)
    index.remember(operations[1])
    return lines, encoder.take_overflowed(), operations


def _direct(encoder: Encoder, index: OperationsIndex, spans: list[model_pb2.Span]) -> Any:
    groups = group_by_process(spans)
    for group in groups:
        check_span_list(group.spans)
    lines = encoder.encode_jaeger(TABLE, groups)
    operations = index.lines_of((service_of(group.resource), group.spans) for group in groups)
    index.remember(operations[1])
    return lines, encoder.take_overflowed(), operations


# --- the store's two entry points --------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.spans = 0

    async def submit(self, lines: list[str], spans: int | None = None) -> None:
        self.lines.extend(lines)
        self.spans += len(lines) if spans is None else spans


class _Client:
    async def sql(self, statement: str, *, tenant: str, database: str) -> list[dict[str, Any]]:
        return []


def _store(oldest: int | None, budget: tuple[int | None, int | None]) -> tuple[TraceStore, _Writer]:
    writer = _Writer()
    store = TraceStore(_Client(), Target("cnosdb", "jaeger", TABLE), writer,  # type: ignore[arg-type]
                       None if oldest is None else (lambda: oldest),
                       max_span_attributes=budget[0], max_attribute_columns=budget[1])
    return store, writer


@PROPERTY
@given(batches=batches, budget=budgets,
       oldest=st.none() | st.integers(0, 2**63) | st.sampled_from([1_700_000_000 * 10**9]))
def test_write_jaeger_is_write_of_otlp(batches: list[list[model_pb2.Span]], budget: tuple[int | None, int | None],
                                       oldest: int | None) -> None:
    through_otlp, otlp_writer = _store(oldest, budget)
    direct, direct_writer = _store(oldest, budget)

    async def run() -> None:
        for spans in batches:
            want = await _store_outcome(_write_through_otlp, through_otlp, spans)
            got = await _store_outcome(direct.write_jaeger, spans)
            assert got == want
            assert (direct_writer.lines, direct_writer.spans) == (otlp_writer.lines, otlp_writer.spans)

    asyncio.run(run())


async def _write_through_otlp(store: TraceStore, spans: list[model_pb2.Span], transport: str) -> Any:
    return await store.write(jaeger_spans_to_resource_spans(spans), transport)


async def _store_outcome(write: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", await write(*args, "t")
    except ValueError as exc:  # conversion to OTLP: the transport's InvalidRequest, of the same message
        if isinstance(exc, InvalidValue) and "after the last time" in str(exc):
            return type(exc).__name__, str(exc)
        return "InvalidRequest", str(exc)
    except StorageError as exc:
        return type(exc).__name__, str(exc)


# --- cases worth naming ------------------------------------------------------------------------------


def _tag(key: str, value: str) -> model_pb2.KeyValue:
    return model_pb2.KeyValue(key=key, v_str=value)


def _span(**fields: Any) -> model_pb2.Span:
    span = model_pb2.Span(trace_id=b"\x00" * 15 + b"\x01", span_id=b"\x00" * 7 + b"\x02", operation_name="op",
                          process=model_pb2.Process(service_name="svc"), **fields)
    span.start_time.seconds = 1_700_000_000
    span.duration.nanos = 1500
    return span


@pytest.mark.parametrize("span", [
    _span(tags=[_tag("span.kind", "server"), _tag("span.kind", "client"), _tag("otel.status_code", "ERROR"),
                _tag("otel.status_description", "bad \"quote\" \\"), _tag("w3c.tracestate", "a=1,b=2"),
                model_pb2.KeyValue(key="error", v_type=model_pb2.BOOL, v_bool=True)]),
    _span(warnings=["w1", "w\"2"], flags=3),
    _span(references=[model_pb2.SpanRef(trace_id=b"\x00" * 15 + b"\x01", span_id=b"\x09" * 8),
                      model_pb2.SpanRef(trace_id=b"\x00" * 15 + b"\x01", span_id=b"\x0a" * 8),
                      model_pb2.SpanRef(trace_id=b"\x03" * 8, span_id=b"\x0b" * 8,
                                        ref_type=model_pb2.FOLLOWS_FROM)]),
    _span(logs=[model_pb2.Log(fields=[_tag("event", "cache.miss"), _tag("k", "v")])]),
    _span(tags=[_tag("a", "1"), _tag("b", "2"), _tag("c", "3"), _tag("d", "4")], warnings=["w"]),
], ids=["special-tags", "warnings-and-flags", "references", "logs", "beyond-the-budget"])
@pytest.mark.parametrize("budget", [(None, None), (1, None), (None, 1), (0, 0), (2, 1)])
def test_named_cases(span: model_pb2.Span, budget: tuple[int | None, int | None]) -> None:
    want = _through_otlp(Encoder(AttributeBudget(*budget)), OperationsIndex(TABLE), [span])
    assert _direct(Encoder(AttributeBudget(*budget)), OperationsIndex(TABLE), [span]) == want
