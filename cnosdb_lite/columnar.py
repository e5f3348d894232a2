"""Columnar writes: rows handed over as Arrow columns with their kinds, instead of line protocol to parse.

An in-process writer that already holds its rows as values (the trace server's embedded default) gives them
to `Engine.write_columns` as `TableRows`: what `line_protocol.parse` makes of a request, without the text.
They are logged to the WAL as Arrow IPC streams (`to_wal` / `from_wal`), one per table, so a columnar write
is never turned back into line protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from .table import ARROW

TIME = "time"


@dataclass(frozen=True)
class TableRows:
    """The rows one write gives one table: `data` holds `time` (int64, nanoseconds) first, then exactly the
    columns of `kinds` (column -> TAG, STRING, I64, U64, F64 or BOOL, as `lp_exact` names them), each of the
    Arrow type of its kind; a null is a column the row does not set."""

    kinds: dict[str, str]
    data: pa.RecordBatch


def check(tables: Mapping[str, TableRows]) -> None:
    """Raise ValueError for rows that are not in the shape `TableRows` describes (a caller's bug, not a
    request CnosDB would refuse: those errors come from the write itself, as for line protocol)."""
    for name, rows in tables.items():
        if not name:
            raise ValueError("a table needs a name")
        schema = rows.data.schema
        if not schema.names or schema.names[0] != TIME or schema.field(0).type != pa.int64():
            raise ValueError(f"table {name!r}: the first column must be {TIME!r}, int64 nanoseconds")
        if rows.data.column(0).null_count:
            raise ValueError(f"table {name!r}: every row needs a time")
        if TIME in rows.kinds:
            raise ValueError(f"table {name!r}: {TIME!r} is no column of its kinds")
        if schema.names[1:] != list(rows.kinds):
            raise ValueError(f"table {name!r}: the columns after {TIME!r} must be those of its kinds, in order")
        for field, kind in zip(list(schema)[1:], rows.kinds.values(), strict=True):
            expected = ARROW.get(kind)
            if expected is None:
                raise ValueError(f"table {name!r}: column {field.name!r} has no kind {kind!r}")
            if field.type != expected:
                raise ValueError(f"table {name!r}: column {field.name!r} of kind {kind} must be {expected}")


def to_wal(tables: Mapping[str, TableRows]) -> tuple[list[list[object]], bytes]:
    """The WAL record of a columnar write: per table [name, kinds, bytes of its IPC stream], and the body."""
    sink = pa.BufferOutputStream()
    described: list[list[object]] = []
    for name, rows in tables.items():
        start = sink.tell()
        with pa.ipc.new_stream(sink, rows.data.schema) as stream:
            stream.write_batch(rows.data)
        described.append([name, rows.kinds, sink.tell() - start])
    return described, sink.getvalue().to_pybytes()


def from_wal(described: list[list[object]], body: bytes) -> dict[str, TableRows]:
    """The inverse of `to_wal`."""
    tables: dict[str, TableRows] = {}
    offset = 0
    for name, kinds, size in described:
        assert isinstance(name, str) and isinstance(kinds, dict) and isinstance(size, int)
        stream = pa.ipc.open_stream(pa.py_buffer(body[offset:offset + size]))
        tables[name] = TableRows(kinds, stream.read_next_batch())    # `to_wal` wrote one batch
        offset += size
    return tables
