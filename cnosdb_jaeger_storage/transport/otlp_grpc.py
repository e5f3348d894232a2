"""OTLP/gRPC `opentelemetry.proto.collector.trace.v1.TraceService`: the write path of Jaeger 2.x."""

from __future__ import annotations

import grpc

from ..proto import trace_service_pb2, trace_service_pb2_grpc
from ..storage.tenancy import Tenancy
from .admission import Admission
from .grpc_support import add_servicer, store_of, unary
from .otlp_ingest import export

SERVICE_NAME = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, tenancy: Tenancy, admission: Admission) -> None:
        self._tenancy = tenancy
        self._admission = admission

    @unary("otlp")
    async def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
                     context: grpc.aio.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        store = store_of(self._tenancy, context)
        async with self._admission.admit(request.ByteSize()):
            return await export(store, request, "otlp_grpc")


def register(server: grpc.aio.Server, tenancy: Tenancy, admission: Admission) -> list[str]:
    add_servicer(trace_service_pb2_grpc.add_TraceServiceServicer_to_server, TraceService(tenancy, admission), server)
    return [SERVICE_NAME, "jaeger.storage.v2.TraceWriter"]
