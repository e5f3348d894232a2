"""Executing CnosDB's own statements against the engine's catalog (the caller holds the engine lock).

Output shapes follow CnosDB: SHOW DATABASES → `database_name`, SHOW TABLES → `table_name` (sorted),
DESCRIBE TABLE → `column_name, data_type, column_type, compression_codec`, DESCRIBE DATABASE → the
option columns, INSERT → `rows`; everything else returns None (HTTP 200 with an empty body).
"""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
from datafusion import SessionContext

from . import ddl, errors
from .catalog import Database
from .sql_text import quote_ident
from .table import SQL_TYPES, TAG, TIME, Table, conform


class Namespaces(Protocol):
    """What statements need of the engine: its tenants and databases, and two notices."""

    def tenant(self, tenant: str) -> dict[str, Database]:
        """The tenant's databases by name; CnosDBError if there is no such tenant."""

    def database(self, tenant: str, database: str) -> Database:
        """CnosDBError if there is no such tenant or database."""

    def forget_database(self, tenant: str, database: str) -> None:
        """A database was dropped."""

    def expire(self, now: int) -> None:
        """TTL changed: drop what has expired."""

_UNIT_NAMES = {"ns": "NANOSECOND", "us": "MICROSECOND", "ms": "MILLISECOND"}


def run_command(engine: Namespaces, tenant: str, database: str, cmd: ddl.Command, now: int) -> pa.Table | None:
    dbs = engine.tenant(tenant)
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
        engine.forget_database(tenant, cmd.name)
        return None
    if isinstance(cmd, ddl.AlterDatabase):
        altered = engine.database(tenant, cmd.name)
        for key, value in cmd.changes.items():
            setattr(altered.options, key, value)
        engine.expire(now)
        return None
    if isinstance(cmd, ddl.Show) and cmd.what == "DATABASES":
        return pa.table({"database_name": pa.array(sorted(dbs), pa.string())})
    if isinstance(cmd, ddl.Describe) and cmd.what == "DATABASE":
        row = engine.database(tenant, cmd.name).options.describe_row()
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
    """DELETE keeps the rows its predicate is not true for; predicates may use tags and time only.  Each
    segment is filtered on its own; those that lose rows are rewritten."""
    if cmd.where is None:
        table.clear()
        return
    fields = [i for i in cmd.where_idents if table.columns.get(i) not in (None, TAG, TIME)]
    if fields:
        raise errors.not_implemented("Filtering on the field column on the tskv table in delete statement")
    sql = f"SELECT * FROM {quote_ident(table.name)} WHERE NOT coalesce(({cmd.where}), false)"
    schema = table.schema

    def keep(rows: pa.Table) -> pa.Table:
        ctx = SessionContext()
        ctx.register_record_batches(table.name, [rows.to_batches() or [pa.RecordBatch.from_pylist([], schema=schema)]])
        try:
            return ctx.sql(sql).to_arrow_table().cast(schema)
        except Exception as e:  # DataFusion's planning error, e.g. an unknown column
            raise errors.datafusion(str(e)) from None

    keep(pa.Table.from_batches([], schema))            # a statement that cannot plan fails before any change
    table.rewrite(keep)


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
