"""Jaeger remote storage API v1 (`jaeger.storage.v1`), which Jaeger 1.x speaks, over the storage API.

Semantics from Jaeger's own client: a missing trace is NOT_FOUND with exactly `trace not found`; spans of
one trace are contiguous in a FindTraces stream; chunks hold at most 1,000 spans and 3 MiB
(`grpc_support.MAX_CHUNK_BYTES`, under gRPC's default 4 MiB message limit).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import grpc

from ..errors import TraceNotFound
from ..model.ids import trace_id_hex
from ..model.jaeger_otlp import records_to_jaeger
from ..model.trace_query import TraceQuery
from ..proto import model_pb2, storage_v1_grpc
from ..proto import storage_v1_pb2 as pb
from ..storage.store import TraceStore
from ..storage.tenancy import Tenancy
from .grpc_support import (
    ENTRY_OVERHEAD,
    MAX_CHUNK_BYTES,
    add_servicer,
    decoded,
    duration_ns,
    store_of,
    streaming,
    timestamp_ns,
    unary,
)

MAX_CHUNK_SPANS = 1000
STREAM_WRITE_CHUNK = 1000
STREAM_WRITES_IN_FLIGHT = 8
DEFAULT_NUM_TRACES = 100


def chunks(spans: Iterable[model_pb2.Span]) -> Iterable[pb.SpansResponseChunk]:
    """The spans in order, as chunks of at most MAX_CHUNK_SPANS spans and MAX_CHUNK_BYTES bytes."""
    batch: list[model_pb2.Span] = []
    size = 0
    for span in spans:
        span_size = span.ByteSize() + ENTRY_OVERHEAD
        if batch and (len(batch) == MAX_CHUNK_SPANS or size + span_size > MAX_CHUNK_BYTES):
            yield pb.SpansResponseChunk(spans=batch)
            batch, size = [], 0
        batch.append(span)
        size += span_size
    if batch:
        yield pb.SpansResponseChunk(spans=batch)


def trace_query(q: pb.TraceQueryParameters) -> TraceQuery:
    return TraceQuery(
        service=q.service_name, operation=q.operation_name, attributes=dict(q.tags),
        start_min=timestamp_ns(q.start_time_min), start_max=timestamp_ns(q.start_time_max),
        duration_min=duration_ns(q.duration_min), duration_max=duration_ns(q.duration_max),
        limit=q.num_traces if q.num_traces > 0 else DEFAULT_NUM_TRACES)


class SpanWriter(storage_v1_grpc.SpanWriterPluginServicer):
    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    @unary("v1")
    async def WriteSpan(self, request: pb.WriteSpanRequest, context: grpc.aio.ServicerContext
                        ) -> pb.WriteSpanResponse:
        await store_of(self._tenancy, context).write_jaeger([request.span], "jaeger_v1")
        return pb.WriteSpanResponse()

    @unary("v1")
    async def Close(self, request: pb.CloseWriterRequest, context: grpc.aio.ServicerContext
                    ) -> pb.CloseWriterResponse:
        return pb.CloseWriterResponse()  # writes are acknowledged one by one: nothing to flush


class StreamingSpanWriter(storage_v1_grpc.StreamingSpanWriterPluginServicer):
    """Writes spans while the stream is still being read, and finishes writing what it received even when
    the client goes away: Jaeger's streaming client counts a span as saved once it is sent, and cancels a
    stream with the request that opened it."""

    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy
        self._draining: set[asyncio.Task[None]] = set()

    @unary("v1")
    async def WriteSpanStream(self, request_iterator: AsyncIterator[pb.WriteSpanRequest],
                              context: grpc.aio.ServicerContext) -> pb.WriteSpanResponse:
        writes = _StreamWrites(store_of(self._tenancy, context))
        try:
            async for request in request_iterator:
                writes.add(decoded(request).span)
        finally:
            writes.close()
            drained = asyncio.ensure_future(writes.task)
            self._draining.add(drained)
            drained.add_done_callback(self._draining.discard)
        await asyncio.shield(drained)
        return pb.WriteSpanResponse()


class _StreamWrites:
    """Spans received but not yet written; written in chunks as fast as the writer takes them."""

    def __init__(self, store: TraceStore) -> None:
        self._store = store
        self._spans: list[model_pb2.Span] = []
        self._ready = asyncio.Event()
        self._closed = False
        self.task = asyncio.create_task(self._run())

    def add(self, span: model_pb2.Span) -> None:
        self._spans.append(span)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def _run(self) -> None:
        in_flight: set[asyncio.Task[object]] = set()
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._spans:
                    if len(in_flight) >= STREAM_WRITES_IN_FLIGHT:
                        done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                        in_flight -= done
                        for task in done:
                            task.result()  # a failed write fails the stream
                    chunk = self._spans[:STREAM_WRITE_CHUNK]
                    del self._spans[:STREAM_WRITE_CHUNK]
                    in_flight.add(asyncio.create_task(self._store.write_jaeger(chunk, "jaeger_v1_stream")))
                if self._closed:
                    break
        finally:
            for result in await asyncio.gather(*in_flight, return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result


class SpanReader(storage_v1_grpc.SpanReaderPluginServicer):
    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    @streaming("v1")
    async def GetTrace(self, request: pb.GetTraceRequest, context: grpc.aio.ServicerContext
                       ) -> AsyncIterator[pb.SpansResponseChunk]:
        trace = await store_of(self._tenancy, context).get_trace_records(
            trace_id_hex(request.trace_id), timestamp_ns(request.start_time), timestamp_ns(request.end_time))
        if not trace:
            raise TraceNotFound()
        for chunk in chunks(records_to_jaeger(trace)):
            yield chunk

    @unary("v1")
    async def GetServices(self, request: pb.GetServicesRequest, context: grpc.aio.ServicerContext
                          ) -> pb.GetServicesResponse:
        return pb.GetServicesResponse(services=await store_of(self._tenancy, context).services())

    @unary("v1")
    async def GetOperations(self, request: pb.GetOperationsRequest, context: grpc.aio.ServicerContext
                            ) -> pb.GetOperationsResponse:
        operations = await store_of(self._tenancy, context).operations(request.service, request.span_kind)
        return pb.GetOperationsResponse(
            operationNames=sorted({name for name, _ in operations}),
            operations=[pb.Operation(name=name, span_kind=kind) for name, kind in operations])

    @streaming("v1")
    async def FindTraces(self, request: pb.FindTracesRequest, context: grpc.aio.ServicerContext
                         ) -> AsyncIterator[pb.SpansResponseChunk]:
        # Chunks may hold several traces; a trace's spans stay contiguous because traces come whole.
        pending: list[model_pb2.Span] = []
        async for trace in store_of(self._tenancy, context).find_traces_records(trace_query(request.query)):
            pending.extend(records_to_jaeger(trace))
            if len(pending) >= MAX_CHUNK_SPANS:
                for chunk in chunks(pending):
                    yield chunk
                pending = []
        for chunk in chunks(pending):
            yield chunk

    @unary("v1")
    async def FindTraceIDs(self, request: pb.FindTraceIDsRequest, context: grpc.aio.ServicerContext
                           ) -> pb.FindTraceIDsResponse:
        trace_ids = await store_of(self._tenancy, context).find_trace_ids(trace_query(request.query))
        return pb.FindTraceIDsResponse(trace_ids=[bytes.fromhex(t) for t in trace_ids])


class DependenciesReader(storage_v1_grpc.DependenciesReaderPluginServicer):
    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    @unary("v1")
    async def GetDependencies(self, request: pb.GetDependenciesRequest, context: grpc.aio.ServicerContext
                              ) -> pb.GetDependenciesResponse:
        links = await store_of(self._tenancy, context).dependencies(
            timestamp_ns(request.start_time), timestamp_ns(request.end_time))
        return pb.GetDependenciesResponse(dependencies=[
            model_pb2.DependencyLink(parent=p, child=c, call_count=n) for p, c, n in links])


class Capabilities(storage_v1_grpc.PluginCapabilitiesServicer):
    def __init__(self, streaming_writer: bool) -> None:
        self._streaming_writer = streaming_writer

    @unary("v1")
    async def Capabilities(self, request: pb.CapabilitiesRequest, context: grpc.aio.ServicerContext
                           ) -> pb.CapabilitiesResponse:
        return pb.CapabilitiesResponse(streamingSpanWriter=self._streaming_writer)


def register(server: grpc.aio.Server, tenancy: Tenancy, *, streaming_writer: bool = True) -> list[str]:
    """Adds the v1 services; returns their names for the health service."""
    add_servicer(storage_v1_grpc.add_SpanWriterPluginServicer_to_server, SpanWriter(tenancy), server)
    add_servicer(storage_v1_grpc.add_StreamingSpanWriterPluginServicer_to_server, StreamingSpanWriter(tenancy),
                 server)
    add_servicer(storage_v1_grpc.add_SpanReaderPluginServicer_to_server, SpanReader(tenancy), server)
    add_servicer(storage_v1_grpc.add_DependenciesReaderPluginServicer_to_server, DependenciesReader(tenancy), server)
    add_servicer(storage_v1_grpc.add_PluginCapabilitiesServicer_to_server, Capabilities(streaming_writer), server)
    return [f"jaeger.storage.v1.{name}" for name in (
        "SpanWriterPlugin", "StreamingSpanWriterPlugin", "SpanReaderPlugin", "DependenciesReaderPlugin",
        "PluginCapabilities")]
