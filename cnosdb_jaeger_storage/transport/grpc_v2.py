"""Jaeger remote storage API v2 (`jaeger.storage.v2`), the only one Jaeger 2.6+ speaks.

Chunking, as the proto requires: a `TracesData` never mixes traces and is never empty; a large trace is
split across consecutive chunks, each under MAX_CHUNK_BYTES; a trace that is not found is simply absent from
the stream. `FindTraceSummaries` (Jaeger 2.19+'s search page) answers from counts CnosDB computes, without
reading the traces' spans.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable

import grpc

from ..model.ids import trace_id_hex
from ..model.span_rows import attribute_text
from ..model.trace_query import TraceQuery
from ..proto import common_pb2, dependency_storage_grpc, dependency_storage_pb2, trace_pb2, trace_storage_grpc
from ..proto import trace_storage_pb2 as pb
from ..storage.store import TraceSummary
from ..storage.tenancy import Tenancy
from .grpc_support import (
    ENTRY_OVERHEAD,
    MAX_CHUNK_BYTES,
    add_servicer,
    duration_ns,
    ns_timestamp,
    store_of,
    streaming,
    timestamp_ns,
    unary,
)

MAX_CHUNK_SPANS = 1000
DEFAULT_SEARCH_DEPTH = 100


def traces_data(trace: list[trace_pb2.ResourceSpans]) -> Iterable[trace_pb2.TracesData]:
    """One trace as TracesData chunks of at most MAX_CHUNK_SPANS spans and MAX_CHUNK_BYTES bytes, none empty,
    the spans in order (a span larger than the bound alone)."""
    chunk, count, size = trace_pb2.TracesData(), 0, 0
    for rs in trace:
        for ss in rs.scope_spans:
            # What a chunk holds for this resource and scope besides the spans (upper bound).
            header = (rs.resource.ByteSize() + ss.scope.ByteSize() + len(rs.schema_url.encode())
                      + len(ss.schema_url.encode()) + 4 * ENTRY_OVERHEAD)
            scope_spans = None
            for span in ss.spans:
                span_size = span.ByteSize() + ENTRY_OVERHEAD
                added = span_size + (header if scope_spans is None else 0)
                if count and (count == MAX_CHUNK_SPANS or size + added > MAX_CHUNK_BYTES):
                    yield chunk
                    chunk, count, size, scope_spans = trace_pb2.TracesData(), 0, 0, None
                if scope_spans is None:
                    part = chunk.resource_spans.add(schema_url=rs.schema_url)
                    part.resource.CopyFrom(rs.resource)
                    scope_spans = part.scope_spans.add(schema_url=ss.schema_url)
                    scope_spans.scope.CopyFrom(ss.scope)
                    size += header
                scope_spans.spans.append(span)
                count += 1
                size += span_size
    if count:
        yield chunk


def summaries_responses(summaries: list[TraceSummary]) -> Iterable[pb.FindTraceSummariesResponse]:
    """The summaries as responses of at most MAX_CHUNK_BYTES bytes (a trace of very many services alone)."""
    response, size = pb.FindTraceSummariesResponse(), 0
    for s in summaries:
        message = pb.TraceSummary(
            trace_id=bytes.fromhex(s.trace_id), root_service_name=s.root_service, root_operation_name=s.root_name,
            min_start_time_unix_nano=s.first_start, max_end_time_unix_nano=s.last_end, span_count=s.spans,
            error_span_count=s.errors, orphan_span_count=s.orphans,
            services=[pb.ServiceSummary(name=v.name, span_count=v.spans, error_span_count=v.errors)
                      for v in s.services])
        message_size = message.ByteSize() + ENTRY_OVERHEAD
        if response.summaries and size + message_size > MAX_CHUNK_BYTES:
            yield response
            response, size = pb.FindTraceSummariesResponse(), 0
        response.summaries.append(message)
        size += message_size
    if response.summaries:
        yield response


def _search_text(value: pb.AnyValue) -> str:
    """A typed search value as the text the span table stores (docs/schema.md).

    `jaeger.storage.v2.AnyValue` is a copy of OTLP's, so the bytes convert one into the other.
    """
    text = attribute_text(common_pb2.AnyValue.FromString(value.SerializeToString()))
    return text[0] if text else ""


def trace_query(q: pb.TraceQueryParameters) -> TraceQuery:
    return TraceQuery(
        service=q.service_name, operation=q.operation_name,
        attributes={kv.key: _search_text(kv.value) for kv in q.attributes},
        start_min=timestamp_ns(q.start_time_min), start_max=timestamp_ns(q.start_time_max),
        duration_min=duration_ns(q.duration_min), duration_max=duration_ns(q.duration_max),
        limit=q.search_depth if q.search_depth > 0 else DEFAULT_SEARCH_DEPTH)


class TraceReader(trace_storage_grpc.TraceReaderServicer):
    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    @streaming("v2")
    async def GetTraces(self, request: pb.GetTracesRequest, context: grpc.aio.ServicerContext
                        ) -> AsyncIterator[trace_pb2.TracesData]:
        store = store_of(self._tenancy, context)
        # Consecutive IDs asked with the same window are fetched together, a few queries for many IDs.
        for (start, end), same_window in itertools.groupby(
                request.query, key=lambda p: (timestamp_ns(p.start_time), timestamp_ns(p.end_time))):
            async for trace in store.get_traces([trace_id_hex(p.trace_id) for p in same_window], start, end):
                for chunk in traces_data(trace):
                    yield chunk

    @unary("v2")
    async def GetServices(self, request: pb.GetServicesRequest, context: grpc.aio.ServicerContext
                          ) -> pb.GetServicesResponse:
        return pb.GetServicesResponse(services=await store_of(self._tenancy, context).services())

    @unary("v2")
    async def GetOperations(self, request: pb.GetOperationsRequest, context: grpc.aio.ServicerContext
                            ) -> pb.GetOperationsResponse:
        operations = await store_of(self._tenancy, context).operations(request.service, request.span_kind)
        return pb.GetOperationsResponse(operations=[pb.Operation(name=n, span_kind=k) for n, k in operations])

    @streaming("v2")
    async def FindTraces(self, request: pb.FindTracesRequest, context: grpc.aio.ServicerContext
                         ) -> AsyncIterator[trace_pb2.TracesData]:
        async for trace in store_of(self._tenancy, context).find_traces(trace_query(request.query)):
            for chunk in traces_data(trace):
                yield chunk

    @unary("v2")
    async def FindTraceIDs(self, request: pb.FindTraceIDsRequest, context: grpc.aio.ServicerContext
                           ) -> pb.FindTraceIDsResponse:
        found = await store_of(self._tenancy, context).find_trace_bounds(trace_query(request.query))
        return pb.FindTraceIDsResponse(trace_ids=[
            pb.FoundTraceID(trace_id=bytes.fromhex(t.trace_id), start=ns_timestamp(t.first_start),
                            end=ns_timestamp(t.last_end)) for t in found])

    @streaming("v2")
    async def FindTraceSummaries(self, request: pb.FindTraceSummariesRequest, context: grpc.aio.ServicerContext
                                 ) -> AsyncIterator[pb.FindTraceSummariesResponse]:
        async for summaries in store_of(self._tenancy, context).find_trace_summaries(trace_query(request.query)):
            for response in summaries_responses(summaries):
                yield response


class DependencyReader(dependency_storage_grpc.DependencyReaderServicer):
    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    @unary("v2")
    async def GetDependencies(self, request: dependency_storage_pb2.GetDependenciesRequest,
                              context: grpc.aio.ServicerContext) -> dependency_storage_pb2.GetDependenciesResponse:
        links = await store_of(self._tenancy, context).dependencies(
            timestamp_ns(request.start_time), timestamp_ns(request.end_time))
        return dependency_storage_pb2.GetDependenciesResponse(dependencies=[
            dependency_storage_pb2.Dependency(parent=p, child=c, call_count=n) for p, c, n in links])


def register(server: grpc.aio.Server, tenancy: Tenancy) -> list[str]:
    add_servicer(trace_storage_grpc.add_TraceReaderServicer_to_server, TraceReader(tenancy), server)
    add_servicer(dependency_storage_grpc.add_DependencyReaderServicer_to_server, DependencyReader(tenancy), server)
    return ["jaeger.storage.v2.TraceReader", "jaeger.storage.v2.DependencyReader"]
