"""Spans older than the database's TTL: CnosDB refuses a whole write holding one, so the server keeps them
out of it, reports them as rejected, and stores the rest — with the TTL of the database as CnosDB has it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from harness import cnosdb_lite_process, running_server, server_config

from cnosdb_jaeger_storage.cnosdb.client import CnosDBClient
from cnosdb_jaeger_storage.proto import (
    common_pb2,
    resource_pb2,
    trace_pb2,
    trace_service_pb2,
    trace_service_pb2_grpc,
)

DAY = 86_400 * 10**9


def request(*ages_ns: int) -> trace_service_pb2.ExportTraceServiceRequest:
    now = time.time_ns()
    spans = [trace_pb2.Span(trace_id=(i + 1).to_bytes(16, "big"), span_id=(1).to_bytes(8, "big"), name="op",
                            start_time_unix_nano=now - age, end_time_unix_nano=now - age + 1000)
             for i, age in enumerate(ages_ns)]
    resource = resource_pb2.Resource(attributes=[common_pb2.KeyValue(
        key="service.name", value=common_pb2.AnyValue(string_value="svc"))])
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)])])


def test_an_existing_database_keeps_its_own_ttl_and_old_spans_are_rejected_alone(tmp_path: Path) -> None:
    with cnosdb_lite_process(tmp_path / "lite") as url:
        async def create() -> None:
            client = CnosDBClient(url, "root", "", compress=False)
            await client.sql("CREATE DATABASE jaeger WITH TTL '1d'", tenant="cnosdb", database="public")
            await client.close()

        asyncio.run(create())
        with running_server(server_config(tmp_path / "s", cnosdb_url=url, ttl="30d")) as server, \
                server.channel() as channel:
            response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request(0, 3 * DAY, 60 * 10**9))
            rows = server.run(server.server.client.sql('SELECT count(*) AS n FROM "jaeger_spans"',
                                                       tenant="cnosdb", database="jaeger"))
    assert response.partial_success.rejected_spans == 1
    assert "TTL" in response.partial_success.error_message
    assert rows == [{"n": 2}]
