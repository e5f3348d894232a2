"""What every gRPC servicer needs: the request's store, error conversion, time and ID conversions."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from .errors import InvalidRequest, StorageError
from .metrics import METRICS
from .store import TraceStore
from .tenancy import Tenancy

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Jaeger's gogo code always marshals its non-nullable timestamps: an unset Go time arrives as year 1.
_YEAR_ONE_SECONDS = -62135596800


def store_of(tenancy: Tenancy, context: grpc.aio.ServicerContext) -> TraceStore:
    tenant = next((v for k, v in (context.invocation_metadata() or ()) if k == tenancy.header), None)
    return tenancy.store(tenant)


async def _abort(context: grpc.aio.ServicerContext, api: str, exc: Exception) -> None:
    if isinstance(exc, StorageError):
        METRICS.requests.inc(api=api, outcome=exc.grpc_code.name.lower())
        if exc.grpc_code not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            log.warning("request failed api=%s error=%r", api, str(exc))
        await context.abort(exc.grpc_code, str(exc))
    METRICS.requests.inc(api=api, outcome="internal")
    log.exception("request failed api=%s", api)
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")


def unary(api: str) -> Callable[[F], F]:
    """Count, time and convert the errors of a unary (or client-streaming) handler."""
    def wrap(method: F) -> F:
        @functools.wraps(method)
        async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                response = await method(self, request, context)
            except Exception as exc:  # converted to a status at this edge only
                await _abort(context, f"{api}.{method.__name__}", exc)
                raise
            finally:
                METRICS.request_seconds.observe(time.perf_counter() - started, api=f"{api}.{method.__name__}")
            METRICS.requests.inc(api=f"{api}.{method.__name__}", outcome="ok")
            return response
        return handler  # type: ignore[return-value]
    return wrap


def streaming(api: str) -> Callable[[F], F]:
    """The same for a server-streaming handler (an async generator)."""
    def wrap(method: F) -> F:
        @functools.wraps(method)
        async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                async for item in method(self, request, context):
                    yield item
            except Exception as exc:
                await _abort(context, f"{api}.{method.__name__}", exc)
                raise
            finally:
                METRICS.request_seconds.observe(time.perf_counter() - started, api=f"{api}.{method.__name__}")
            METRICS.requests.inc(api=f"{api}.{method.__name__}", outcome="ok")
        return handler  # type: ignore[return-value]
    return wrap


def timestamp_ns(ts: timestamp_pb2.Timestamp) -> int | None:
    """Unix ns, or None for an unset bound (zero, or Jaeger's year 1)."""
    if ts.seconds <= _YEAR_ONE_SECONDS or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.seconds * 1_000_000_000 + ts.nanos


def duration_ns(d: duration_pb2.Duration) -> int | None:
    ns = d.seconds * 1_000_000_000 + d.nanos
    return ns or None


def ns_timestamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def trace_id_hex(raw: bytes) -> str:
    """A 16-byte (or Jaeger's 8-byte) trace ID as the 32 hex digits stored."""
    if len(raw) not in (8, 16):
        raise InvalidRequest(f"trace ID must be 16 or 8 bytes, got {len(raw)}")
    return raw.rjust(16, b"\0").hex()
