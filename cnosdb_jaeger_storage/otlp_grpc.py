"""OTLP/gRPC `opentelemetry.proto.collector.trace.v1.TraceService`: the write path of Jaeger 2.x."""

from __future__ import annotations

import grpc

from .grpc_support import store_of, unary
from .otlp_ingest import export
from .proto import trace_service_pb2, trace_service_pb2_grpc
from .tenancy import Tenancy

SERVICE_NAME = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    @unary("otlp")
    async def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
                     context: grpc.aio.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        return await export(store_of(self._tenancy, context), request, "otlp_grpc")


def register(server: grpc.aio.Server, tenancy: Tenancy) -> list[str]:
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(tenancy), server)
    return [SERVICE_NAME, "jaeger.storage.v2.TraceWriter"]
