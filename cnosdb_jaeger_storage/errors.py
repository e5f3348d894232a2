"""The errors of the storage API, and the one table that turns them into gRPC codes and HTTP statuses.

    StorageError
    ├── InvalidRequest        the client's request is wrong       INVALID_ARGUMENT / 400
    │   └── InvalidValue      a name, text or time CnosDB cannot   (also a ValueError, raised by quoting)
    │                         store or search for
    ├── UnknownTenant         tenant not in --tenants, or headers  PERMISSION_DENIED / 403
    │                         that leave the tenant's database
    ├── UnknownDatabase       CnosDB headers name no database      NOT_FOUND / 404
    ├── TraceNotFound         no span of that trace                NOT_FOUND / 404
    └── CnosDBError           CnosDB answered with an error        UNAVAILABLE / 503 (5xx), NOT_FOUND / 404
                              (its tenant, database or table is gone), or INTERNAL / 500
        └── CnosDBUnavailable CnosDB could not be reached          UNAVAILABLE / 503
            └── CnosDBTimeout CnosDB did not answer in time        UNAVAILABLE / 503

Errors are raised with what was being done and converted only at the edge (the gRPC and HTTP handlers).
"""

from __future__ import annotations

import grpc


class StorageError(Exception):
    grpc_code = grpc.StatusCode.INTERNAL
    http_status = 500
    logged = False  # already logged where it happened (a failed write): the transports do not log it again


class InvalidRequest(StorageError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class InvalidValue(InvalidRequest, ValueError):
    """A value no CnosDB statement or line can carry (NUL in a SQL literal, a time beyond i64 nanoseconds).

    Only client input can hold one (the server's own names are checked at start-up), so wherever it is
    found it is the client's fault; a ValueError too, for the callers of `quoting` that expect one.
    """


class UnknownTenant(StorageError):
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403


class UnknownDatabase(StorageError):
    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404


class TraceNotFound(StorageError):
    """Jaeger's v1 client recognises exactly this message (`spanstore.ErrTraceNotFound`)."""

    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404

    def __init__(self) -> None:
        super().__init__("trace not found")


# CnosDB's codes (meta module) for a tenant, database or table that does not exist.
_CNOSDB_NOT_FOUND = frozenset({"030010", "030017", "030019"})


class CnosDBError(StorageError):
    """CnosDB answered with an error; `code` and `message` are CnosDB's own."""

    def __init__(self, status: int, code: str, message: str, doing: str = "") -> None:
        self.status, self.code, self.message = status, code, message
        prefix = f"{doing}: " if doing else ""
        super().__init__(f"{prefix}CnosDB {status} {code}: {message}".rstrip(": "))

    @property
    def retryable(self) -> bool:
        return self.status in (429, 500, 502, 503, 504)

    @property
    def not_found(self) -> bool:
        """CnosDB has no such tenant, database or table: the request addressed one (or it was dropped)."""
        return self.code in _CNOSDB_NOT_FOUND

    @property
    def grpc_code(self) -> grpc.StatusCode:
        if self.retryable:
            return grpc.StatusCode.UNAVAILABLE
        return grpc.StatusCode.NOT_FOUND if self.not_found else grpc.StatusCode.INTERNAL

    @property
    def http_status(self) -> int:  # type: ignore[override]  # a class attribute in StorageError, computed here
        if self.retryable:
            return 503
        return 404 if self.not_found else 500


class CnosDBUnavailable(CnosDBError):
    """Nothing answered (refused, reset, timed out): retryable like a 503, but no status was received."""

    def __init__(self, reason: str, doing: str = "") -> None:
        super().__init__(503, "", reason, doing)
        self.args = (f"{doing + ': ' if doing else ''}CnosDB unreachable: {reason}",)


class CnosDBTimeout(CnosDBUnavailable):
    """No answer within the request time-out: CnosDB may still be working on the request."""

    def __init__(self, seconds: float, doing: str = "") -> None:
        super().__init__(f"no answer within {seconds:g} s", doing)
        self.seconds = seconds
