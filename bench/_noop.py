"""No-op ceilings for bench.plugin --compare-jaeger: servers on the same libraries as the plugin that only
decode what they are sent and answer at once, so that their CPU per span is the floor of each path.

- gRPC (grpc.aio): OTLP TraceService/Export, Jaeger v1 SpanWriterPlugin/WriteSpan and
  StreamingSpanWriterPlugin/WriteSpanStream, each request decoded into its protobuf message, nothing kept;
- OTLP/HTTP (aiohttp): POST /v1/traces reads the whole body and answers 200 with an empty
  ExportTraceServiceResponse, without decoding it (the bench times the bare decode apart).

They run on the event loop the plugin runs on by default (`--event-loop auto`: uvloop where installed).

Run: python -m bench._noop --grpc-addr 127.0.0.1:PORT --http-addr 127.0.0.1:PORT [--event-loop auto]
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import grpc
from aiohttp import web

from cnosdb_jaeger_storage.proto import storage_v1_pb2, trace_service_pb2
from cnosdb_lite import clikit

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
WRITE_SPAN = "/jaeger.storage.v1.SpanWriterPlugin/WriteSpan"
WRITE_SPAN_STREAM = "/jaeger.storage.v1.StreamingSpanWriterPlugin/WriteSpanStream"
EMPTY_EXPORT_RESPONSE = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()


async def _export(request: trace_service_pb2.ExportTraceServiceRequest,
                  context: grpc.aio.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
    return trace_service_pb2.ExportTraceServiceResponse()


async def _write_span(request: storage_v1_pb2.WriteSpanRequest,
                      context: grpc.aio.ServicerContext) -> storage_v1_pb2.WriteSpanResponse:
    return storage_v1_pb2.WriteSpanResponse()


async def _write_span_stream(requests: AsyncIterator[storage_v1_pb2.WriteSpanRequest],
                             context: grpc.aio.ServicerContext) -> storage_v1_pb2.WriteSpanResponse:
    async for _ in requests:
        pass
    return storage_v1_pb2.WriteSpanResponse()


class _Handlers(grpc.GenericRpcHandler):
    """One generic handler for the three methods: no generated servicer classes needed."""

    def __init__(self) -> None:
        self._methods = {
            EXPORT: grpc.unary_unary_rpc_method_handler(
                _export, request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
                response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString),
            WRITE_SPAN: grpc.unary_unary_rpc_method_handler(
                _write_span, request_deserializer=storage_v1_pb2.WriteSpanRequest.FromString,
                response_serializer=storage_v1_pb2.WriteSpanResponse.SerializeToString),
            WRITE_SPAN_STREAM: grpc.stream_unary_rpc_method_handler(
                _write_span_stream, request_deserializer=storage_v1_pb2.WriteSpanRequest.FromString,
                response_serializer=storage_v1_pb2.WriteSpanResponse.SerializeToString),
        }

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._methods.get(handler_call_details.method)


async def _traces(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=EMPTY_EXPORT_RESPONSE, content_type="application/x-protobuf")


async def serve(grpc_addr: str, http_addr: str) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((_Handlers(),))
    server.add_insecure_port(grpc_addr)
    await server.start()
    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/traces", _traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = http_addr.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    try:
        await server.wait_for_termination()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grpc-addr", required=True)
    parser.add_argument("--http-addr", required=True)
    parser.add_argument("--event-loop", choices=clikit.EVENT_LOOPS, default="auto")
    args = parser.parse_args()
    clikit.run(serve(args.grpc_addr, args.http_addr), args.event_loop)


if __name__ == "__main__":
    main()
