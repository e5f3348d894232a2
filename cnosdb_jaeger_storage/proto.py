"""Every protobuf module the server uses, under one short name each.

Generated from `protos/` by `make protos` (Jaeger's api_v2 model and storage APIs v1 and v2); the OTLP
modules come from the installed `opentelemetry-proto` package, whose descriptors the generated v2 code
shares. Other modules import protobuf types from here only.
"""

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from cnosdb_jaeger_storage._gen.jaeger.api_v2 import model_pb2
from cnosdb_jaeger_storage._gen.jaeger.storage.v1 import storage_pb2 as storage_v1_pb2
from cnosdb_jaeger_storage._gen.jaeger.storage.v1 import storage_pb2_grpc as storage_v1_grpc
from cnosdb_jaeger_storage._gen.jaeger.storage.v2 import (
    dependency_storage_pb2,
    trace_storage_pb2,
)
from cnosdb_jaeger_storage._gen.jaeger.storage.v2 import (
    dependency_storage_pb2_grpc as dependency_storage_grpc,
)
from cnosdb_jaeger_storage._gen.jaeger.storage.v2 import (
    trace_storage_pb2_grpc as trace_storage_grpc,
)

__all__ = [
    "common_pb2",
    "dependency_storage_grpc",
    "dependency_storage_pb2",
    "model_pb2",
    "resource_pb2",
    "storage_v1_grpc",
    "storage_v1_pb2",
    "trace_pb2",
    "trace_service_pb2",
    "trace_service_pb2_grpc",
    "trace_storage_grpc",
    "trace_storage_pb2",
]
