"""The one ingest function behind OTLP/gRPC `TraceService/Export` and OTLP/HTTP `POST /v1/traces`."""

from __future__ import annotations

from ..proto import trace_service_pb2
from ..storage.store import TraceStore


async def export(store: TraceStore, request: trace_service_pb2.ExportTraceServiceRequest,
                 transport: str) -> trace_service_pb2.ExportTraceServiceResponse:
    """Stores the request's spans; returns once they are acknowledged, reporting spans it refused."""
    result = await store.write(request.resource_spans, transport)
    response = trace_service_pb2.ExportTraceServiceResponse()
    if result.rejected:
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = result.message
    return response
