"""Executing CnosDB's own statements against the engine's catalog (the caller holds the engine lock).

Output shapes follow CnosDB: SHOW DATABASES → `database_name`, SHOW TABLES → `table_name` (sorted),
DESCRIBE TABLE → `column_name, data_type, column_type, compression_codec`, DESCRIBE DATABASE → the
option columns, INSERT → `rows`; everything else returns None (HTTP 200 with an empty body).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from datafusion import SessionContext

from . import ddl, errors
from .catalog import Database
from .sql_text import quote_ident
from .table import SQL_TYPES, TAG, TIME, Table, conform

if TYPE_CHECKING:
    from .engine import Engine

_UNIT_NAMES = {"ns": "NANOSECOND", "us": "MICROSECOND", "ms": "MILLISECOND"}


def run_command(engine: Engine, tenant: str, database: str, cmd: ddl.Command, now: int) -> pa.Table | None:
    dbs = engine._tenant(tenant)
    if isinstance(cmd, ddl.CreateDatabase):
        if cmd.name in dbs:
            if cmd.if_not_exists:
                return None
            raise errors.database_already_exists(cmd.name)
        dbs[cmd.name] = Database(cmd.name, cmd.options)
        return None
    if isinstance(cmd, ddl.DropDatabase):
        if cmd.name not in dbs:
            if cmd.if_exists:
                return None
            raise errors.database_not_found(cmd.name)
        del dbs[cmd.name]
        engine._contexts.pop((tenant, cmd.name), None)
        return None
    if isinstance(cmd, ddl.AlterDatabase):
        altered = engine._database(tenant, cmd.name)
        for key, value in cmd.changes.items():
            setattr(altered.options, key, value)
        engine._expire(now)
        return None
    if isinstance(cmd, ddl.Show) and cmd.what == "DATABASES":
        return pa.table({"database_name": pa.array(sorted(dbs), pa.string())})
    if isinstance(cmd, ddl.Describe) and cmd.what == "DATABASE":
        row = engine._database(tenant, cmd.name).options.describe_row()
        return pa.Table.from_pylist([row])
    db = dbs.get(database)
    if isinstance(cmd, ddl.Show):   # CnosDB lists no tables of a missing database
        return pa.table({"table_name": pa.array(sorted(db.tables) if db else [], pa.string())})
    if isinstance(cmd, ddl.Describe):
        if db is None or (table := db.tables.get(cmd.name)) is None:
            raise errors.table_not_found(f"{tenant}.{database}.{cmd.name}")
        return _describe_table(table, db.time_unit)
    if db is None:
        raise errors.database_not_found(database)
    if isinstance(cmd, ddl.CreateTable):
        if cmd.name in db.tables:
            if cmd.if_not_exists:
                return None
            raise errors.table_already_exists(cmd.name)
        db.tables[cmd.name] = Table(cmd.name, db.time_unit, cmd.columns)
        return None
    if isinstance(cmd, ddl.DropTable):
        if cmd.name not in db.tables:
            if cmd.if_exists:
                return None
            raise errors.table_not_found(cmd.name)
        del db.tables[cmd.name]
        return None
    if isinstance(cmd, ddl.Delete):
        _delete(_table(db, cmd.table), cmd)
        return None
    if isinstance(cmd, ddl.Insert):
        return _insert(db, _table(db, cmd.table), cmd, now)
    raise errors.not_implemented(type(cmd).__name__)


def _table(db: Database, name: str) -> Table:
    table = db.tables.get(name)
    if table is None:
        raise errors.table_not_found(name)
    return table


def _describe_table(table: Table, unit: str) -> pa.Table:
    rows = []
    for name, kind in table.columns.items():
        if kind == TIME:
            data_type, column_type = f"TIMESTAMP({_UNIT_NAMES[unit]})", "TIME"
        else:
            data_type, column_type = SQL_TYPES[kind], "TAG" if kind == TAG else "FIELD"
        rows.append({"column_name": name, "data_type": data_type, "column_type": column_type,
                     "compression_codec": "DEFAULT"})
    return pa.Table.from_pylist(rows)


def _delete(table: Table, cmd: ddl.Delete) -> None:
    """DELETE keeps the rows its predicate is not true for; predicates may use tags and time only."""
    if cmd.where is None:
        table.retain(pa.Table.from_batches([], table.schema))
        return
    fields = [i for i in cmd.where_idents if table.columns.get(i) not in (None, TAG, TIME)]
    if fields:
        raise errors.not_implemented("Filtering on the field column on the tskv table in delete statement")
    ctx = SessionContext()
    batches = table.batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    ctx.register_record_batches(table.name, [batches])
    sql = f"SELECT * FROM {quote_ident(table.name)} WHERE NOT coalesce(({cmd.where}), false)"
    try:
        keep = ctx.sql(sql).to_arrow_table()
    except Exception as e:  # DataFusion's planning error, e.g. an unknown column
        raise errors.datafusion(str(e)) from None
    table.retain(keep.cast(table.schema))


def _insert(db: Database, table: Table, cmd: ddl.Insert, now: int) -> pa.Table:
    """INSERT ... VALUES through the same upsert path as line protocol."""
    for name in cmd.columns:
        if name not in table.columns:
            expected = ", ".join(table.columns)
            raise errors.semantic(f"Insert column '{name}' does not exist in target table, expect {expected}",
                                  "010044")
    schema = table.schema
    arrays, names = [], []
    for j, name in enumerate(cmd.columns):
        values = [row[j] for row in cmd.rows]
        field = schema.field(name)
        try:
            if name == "time":
                ints = [v if isinstance(v, int) else
                        pa.array([str(v)]).cast(field.type).cast(pa.int64())[0].as_py() for v in values]
                arr = pa.array(ints, pa.int64()).cast(field.type)
            else:
                arr = pa.array(values, field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
            raise errors.datafusion(f"Error during planning: {e}") from None
        arrays.append(arr)
        names.append(name)
    if "time" not in names:
        arrays.append(pa.array([now // {"ns": 1, "us": 1000, "ms": 10**6}[db.time_unit]] * len(cmd.rows),
                               pa.int64()).cast(schema.field("time").type))
        names.append("time")
    data = pa.Table.from_arrays(arrays, names=names)
    if pc.any(pc.is_null(data.column("time"))).as_py():
        raise errors.datafusion("Execution error: time column must not be null")
    table.upsert(conform(data, schema))
    return pa.table({"rows": pa.array([len(cmd.rows)], pa.uint64())})
