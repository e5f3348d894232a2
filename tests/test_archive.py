"""Jaeger 1.x archive storage: a second instance with its own database and a longer TTL (see the README).

jaeger-query archives a trace by reading it from the primary storage and writing every span to the archive
connection (`--grpc-storage-archive.server`) with `WriteSpan`; it reads archived traces with `GetTrace`.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from harness import cnosdb_lite_process, running_server, server_config

from cnosdb_jaeger_storage.proto import model_pb2, storage_v1_grpc
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as pb

TRACE_ID = (77).to_bytes(16, "big")


def spans() -> list[model_pb2.Span]:
    out = []
    for i in range(1, 4):
        span = model_pb2.Span(trace_id=TRACE_ID, span_id=i.to_bytes(8, "big"), operation_name=f"op{i}",
                              process=model_pb2.Process(service_name="shop"))
        span.start_time.FromNanoseconds(time.time_ns() - 10**9 + i)
        span.duration.FromNanoseconds(1000)
        out.append(span)
    return out


def test_archive_instance_keeps_its_own_copy(tmp_path: Path) -> None:
    with cnosdb_lite_process(tmp_path / "lite") as url, \
            running_server(server_config(tmp_path / "p", cnosdb_url=url)) as primary, \
            running_server(server_config(tmp_path / "a", cnosdb_url=url, database="jaeger_archive",
                                         ttl="365d")) as archive:
        with primary.channel() as channel:
            storage_v1_grpc.StreamingSpanWriterPluginStub(channel).WriteSpanStream(
                pb.WriteSpanRequest(span=s) for s in spans())
            trace = [s for c in storage_v1_grpc.SpanReaderPluginStub(channel).GetTrace(
                pb.GetTraceRequest(trace_id=TRACE_ID)) for s in c.spans]
        with archive.channel() as channel:
            reader = storage_v1_grpc.SpanReaderPluginStub(channel)
            with pytest.raises(grpc.RpcError) as before:
                list(reader.GetTrace(pb.GetTraceRequest(trace_id=TRACE_ID)))
            writer = storage_v1_grpc.SpanWriterPluginStub(channel)
            for span in trace:
                writer.WriteSpan(pb.WriteSpanRequest(span=span))
            archived = [s for c in reader.GetTrace(pb.GetTraceRequest(trace_id=TRACE_ID)) for s in c.spans]
        client = archive.server.client
        ttl = {db: archive.run(client.sql(f"DESCRIBE DATABASE {db}", tenant="cnosdb", database=db))[0]["ttl"]
               for db in ("jaeger", "jaeger_archive")}
    assert before.value.code() == grpc.StatusCode.NOT_FOUND
    assert sorted(s.SerializeToString() for s in archived) == sorted(s.SerializeToString() for s in trace)
    assert ttl["jaeger_archive"] != ttl["jaeger"]  # the archive keeps its spans longer
