"""The cnosdb-lite engine facade: namespaces, writes, statements and queries, durably.

Concurrency: one lock guards the catalog, the tables and the WAL append; DataFusion runs outside it (it
releases the GIL), on per-database SessionContexts whose tables are re-registered only when they changed.
A write is parsed outside the lock, validated and applied under it, logged, and acknowledged after the WAL
fsync (group commit, `storage.Wal.sync`).  Memory: recent writes in memtables, flushed (a checkpoint) into
Parquet segments on disk beyond `memtable_bytes`; each table is a view over its segments and memtable
(module `segments`; docs/cnosdb-lite.md "Storage layout"), compacted in the background (`compaction`).
This is a lite engine for one host, not a cluster.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from datafusion import SessionConfig, SessionContext, SQLOptions

from . import (
    columnar,
    compaction,
    ddl,
    errors,
    line_protocol,
    lp_exact,
    memory,
    pushdown,
    recovery,
    segments,
    show_tags,
    storage,
)
from .catalog import NS_PER, Database
from .columnar import TableRows
from .compaction import Compactor
from .line_protocol import LpTable
from .lock import DataDirLock
from .quirks import apply as quirks_apply
from .quirks import edits as quirks_edits
from .quirks import from_env as quirks_from_env
from .scan import Accountant, ScanReport
from .segments import Segment
from .sql_text import Token, quote_ident, single_statement
from .statements import run_command
from .table import TAG, WRITE_COL, Table, conform

CHECKPOINT_WAL_BYTES = 64 << 20
MEMTABLE_BYTES = 64 << 20      # all memtables together are flushed to segments beyond this many bytes
EXPIRE_EVERY_NS = 10 * 10**9
_PARQUET_OPTIONS = {"datafusion.execution.parquet.pushdown_filters": "true",
                    "datafusion.execution.parquet.reorder_filters": "true",
                    "datafusion.execution.parquet.enable_page_index": "true",
                    "datafusion.execution.parquet.bloom_filter_on_read": "true",
                    "datafusion.optimizer.repartition_file_scans": "false"}   # a segment is opened once
_QUERY_OPTIONS = SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)
_TABLE_NOT_FOUND = re.compile(r"^Error during planning: table '([^']*)' not found$")
_PARSER_ERROR = re.compile(r'^SQL error: ParserError\("(.*)"\)$', re.DOTALL)
_HIDDEN_FIELD = re.compile(r",? [^\s,]*" + re.escape(WRITE_COL))
COUNT_STAR = "COUNT(UInt8(1))"          # how CnosDB's DataFusion 27 names an unaliased count(*)
SCAN_LOG_SIZE = 1000
_views = itertools.count(1)
_LOGGED = (ddl.CreateDatabase, ddl.AlterDatabase, ddl.DropDatabase, ddl.CreateTable, ddl.DropTable,
           ddl.Delete, ddl.Insert)


class _Context:
    """A database's DataFusion session and the table versions registered in it."""

    def __init__(self) -> None:
        config = SessionConfig().with_target_partitions(min(4, os.cpu_count() or 1))
        for key, value in _PARQUET_OPTIONS.items():
            config = config.set(key, value)
        self.ctx = SessionContext(config)
        self.versions: dict[str, tuple[int, int]] = {}
        self._parts: dict[str, set[str]] = {}                    # table -> registered segment tables
        self._schemas: dict[str, pa.Schema] = {}

    def register(self, name: str, table: Table, hidden: bool) -> None:
        """Register `table`'s segments and memtable, and view `name` of them all."""
        schema = _visible(table.schema, hidden)
        parts = self._parts.setdefault(name, set())
        known = self._schemas.get(name)
        if known is None or not schema.equals(known):
            for part in parts:
                self.ctx.deregister_table(part)
            parts.clear()
            self._schemas[name] = schema
        wanted = {_segment_name(s): s for s in table.segments}
        for part in parts - set(wanted):
            self.ctx.deregister_table(part)
        for part in set(wanted) - parts:
            self.ctx.register_parquet(part, str(wanted[part].path), schema=schema, skip_metadata=False)
        self._parts[name] = set(wanted)
        mem = f"__mem_{id(table)}"
        if self.ctx.table_exist(mem):
            self.ctx.deregister_table(mem)
        batches = [b.select(schema.names) for b in table.memtable_batches()]
        self.ctx.register_record_batches(mem, [batches or [pa.RecordBatch.from_pylist([], schema=schema)]])
        self._union(name, [f"SELECT * FROM {quote_ident(part)}" for part in [*wanted, mem]])

    def register_narrowed(self, table: Table, hidden: bool, kept: list[Segment], memtable: pa.Table | None,
                          traces: set[str] | None) -> tuple[str, list[str]]:
        """A source of the segments `kept` and of the memtable, or of just its rows `memtable` when given (a
        narrowed read, `_narrowed`): the name to read and the temporary tables to deregister after the query.
        With `traces` (every reference pins the trace ID to them), a segment is read for just the IDs its
        bloom filter may hold: the page index then skips the pages the others would fall in.  A single part
        read whole is read directly; otherwise through a UNION ALL view (planning a view costs ~1 ms)."""
        trace = segments.trace_tag(table.tags())
        reads: list[tuple[str, str]] = []                  # (part, condition: '' to read it whole)
        for segment in kept:
            condition = ""
            if traces is not None and trace is not None and segment.ids is not None:
                held = sorted(t for t in traces if segment.ids.may_hold(t))
                if not held:
                    continue
                if len(held) < len(traces):
                    condition = f" WHERE {quote_ident(trace)} IN ({', '.join(map(_literal, held))})"
            reads.append((_segment_name(segment), condition))
        temporary = []
        if memtable is None:
            reads.append((f"__mem_{id(table)}", ""))
        elif memtable.num_rows or not reads:
            rows = f"__narrowed_rows_{next(_views)}"
            schema = _visible(table.schema, hidden)
            batches = memtable.select(schema.names).to_batches()
            self.ctx.register_record_batches(rows, [batches or [pa.RecordBatch.from_pylist([], schema=schema)]])
            reads.append((rows, ""))
            temporary.append(rows)
        if len(reads) == 1 and not reads[0][1]:
            return reads[0][0], temporary
        view = f"__narrowed_{next(_views)}"
        self._union(view, [f"SELECT * FROM {quote_ident(part)}{condition}" for part, condition in reads])
        return view, [*temporary, view]

    def _union(self, name: str, selects: list[str]) -> None:
        """View `name`: the UNION ALL of `selects` (each of a part registered with the same visible schema)."""
        if self.ctx.table_exist(name):
            self.ctx.deregister_table(name)
        self.ctx.register_view(name, self.ctx.sql(" UNION ALL ".join(selects)))

    def drop(self, name: str) -> None:
        for part in self._parts.pop(name, set()):
            self.ctx.deregister_table(part)
        self._schemas.pop(name, None)
        self.ctx.deregister_table(name)
        del self.versions[name]


class Engine:
    """The engine.  `quirks` reproduces CnosDB's field-filter defect (module `quirks`; None: the
    CNOSDB_LITE_QUIRKS environment variable); `scan_accounting` records a `ScanReport` per query in
    `scans` (module `scan`; None: on in quirks mode)."""

    def __init__(self, data_dir: str | os.PathLike, *, now_ns: Callable[[], int] = time.time_ns,
                 quirks: bool | None = None, scan_accounting: bool | None = None,
                 memtable_bytes: int = MEMTABLE_BYTES, compaction: bool = True) -> None:
        self.memtable_bytes = memtable_bytes
        self._compactor: Compactor | None = None
        self._pending: set[Path] = set()       # compaction outputs being written: kept from cleanup
        self._reading = 0                        # queries running outside the lock (see `_reading_files`)
        self._doomed: set[Path] = set()          # files a checkpoint dropped while queries ran
        self.quirks = quirks_from_env() if quirks is None else quirks
        self.scan_accounting = self.quirks if scan_accounting is None else scan_accounting
        self.scans: deque[ScanReport] = deque(maxlen=SCAN_LOG_SIZE)
        self._accountant = Accountant()
        self.data_dir = Path(data_dir)
        self.now_ns = now_ns
        self.lock = threading.RLock()
        self.tenants: dict[str, dict[str, Database]] = {}
        self._contexts: dict[tuple[str, str], _Context] = {}
        self._last_expire = 0
        self._closed = False
        self._dir_lock = DataDirLock.acquire(self.data_dir)    # before anything in the directory is touched
        try:
            self._open()
        except BaseException:
            self._dir_lock.release()
            raise
        self._compactor = Compactor(self._next_compaction, self._finish_compaction) if compaction else None
        if self._compactor is not None:
            self._compactor.nudge()

    @functools.cached_property
    def _no_tables(self) -> _Context:
        """What queries of a missing database see; made on first use (a DataFusion session costs 20 MB)."""
        return _Context()

    def _open(self) -> None:
        """Load the last checkpoint (module `recovery`), replay the WAL after it, open the WAL for writes."""
        loaded = recovery.load(self.data_dir)
        self.tenants = loaded.tenants
        self._committed = loaded.committed
        for header, body in storage.replay(self.data_dir / "wal", loaded.wal_gen):
            self._replay(header, body)
        gens = storage.wal_generations(self.data_dir / "wal")
        self.wal = storage.Wal(self.data_dir / "wal", max([loaded.wal_gen, *gens]))
        self._checkpointed_gen = loaded.wal_gen
        for dbs in self.tenants.values():      # as after CnosDB's restart: stored rows have every column
            for db in dbs.values():
                for table in db.tables.values():
                    table.born.clear()
        self.expire(self.now_ns())
        if loaded.damaged:                     # make the directory consistent again (recovery docstring)
            self.checkpoint()
        memory.release()                       # the manifest's text, what verifying and replay read

    # -- public API ---------------------------------------------------------------------------------------
    def write_lines(self, tenant: str, database: str, text: str, precision: str = "ns") -> None:
        """Write line protocol; returns once durable.  Raises CnosDBError like CnosDB's /api/v1/write."""
        now = self.now_ns()
        precision = precision.lower() if precision and precision.lower() in NS_PER else "ns"
        parsed = line_protocol.parse(text, now)
        with self.lock:
            self._apply_write(tenant, database, parsed, precision, now, check_ttl=True, text=text)
            offset = self.wal.append({"op": "write", "tenant": tenant, "db": database, "precision": precision,
                                      "now": now}, text)
            wal = self.wal
            self._maintain(now)
        wal.sync(offset)

    def write_columns(self, tenant: str, database: str, tables: Mapping[str, TableRows]) -> None:
        """Write rows given as columns (module `columnar`), nanosecond timestamps: what `write_lines` does with
        the tables it parses (the same errors, TTL, buckets and upserts; all or nothing); returns once durable.
        ValueError for rows not in `TableRows`' shape."""
        columnar.check(tables)
        now = self.now_ns()
        described, body = columnar.to_wal(tables)
        with self.lock:
            self._apply_write(tenant, database, tables, "ns", now, check_ttl=True)
            offset = self.wal.append({"op": "columns", "tenant": tenant, "db": database, "now": now,
                                      "tables": described}, body)
            wal = self.wal
            self._maintain(now)
        wal.sync(offset)

    def execute(self, tenant: str, database: str, sql: str) -> pa.Table | None:
        """Run one SQL statement; a table for queries, None for DDL.  Raises CnosDBError."""
        return self.execute_with_scan(tenant, database, sql)[0]

    def execute_with_scan(self, tenant: str, database: str, sql: str) -> tuple[pa.Table | None, ScanReport | None]:
        """`execute`, plus the statement's scan report when scan accounting is on and it read a table."""
        if tenant not in self.tenants:
            raise errors.auth_tenant_not_found(tenant)   # CnosDB authenticates against the tenant first
        tokens = single_statement(sql)
        if not tokens:
            raise errors.sql_parser("Expected an SQL statement, found: EOF")
        command = ddl.parse(tokens, sql)
        if command is None:
            return self._select(tenant, database, sql, tokens)
        if isinstance(command, ddl.ShowTags):
            return self._show_tags(tenant, database, sql, command)
        now = self.now_ns()
        with self.lock:
            result = run_command(self, tenant, database, command, now)
            if not isinstance(command, _LOGGED):
                return result, None
            offset = self.wal.append({"op": "sql", "tenant": tenant, "db": database, "now": now}, sql)
            wal = self.wal
        wal.sync(offset)
        return result, None

    def wait_for_compaction(self, timeout: float = 600.0) -> bool:
        """Block until no merge is due (benchmarks, tests); False on timeout or with compaction off."""
        if self._compactor is None:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._compactor.nudge()
            if self._compactor.wait_idle(min(1.0, deadline - time.monotonic())):
                return True
        return False

    @property
    def last_scan(self) -> ScanReport | None:
        """The most recent scan report (tests: clear `scans` first when other clients may query)."""
        return self.scans[-1] if self.scans else None

    def close(self) -> None:
        """Stop compaction, checkpoint (unless nothing was logged since the last one), close the WAL, release
        the directory."""
        if self._compactor is not None:
            self._compactor.stop()
        with self.lock:
            if self._closed:
                return
            try:
                if self.wal.size or self.wal.gen != self._checkpointed_gen:
                    self.checkpoint()
                self.wal.close()
            finally:
                self._closed = True
                self._dir_lock.release()

    # -- namespaces (the `statements.Namespaces` interface; the caller holds the lock) --------------------
    def tenant(self, tenant: str) -> dict[str, Database]:
        dbs = self.tenants.get(tenant)
        if dbs is None:
            raise errors.tenant_not_found(tenant)
        return dbs

    def forget_database(self, tenant: str, database: str) -> None:
        """A dropped database's query session goes with it."""
        self._contexts.pop((tenant, database), None)

    def database(self, tenant: str, database: str) -> Database:
        db = self.tenant(tenant).get(database)
        if db is None:
            raise errors.database_not_found(database)
        return db

    # -- writes -------------------------------------------------------------------------------------------
    def _apply_write(self, tenant: str, database: str, parsed: Mapping[str, LpTable | TableRows], precision: str,
                     now: int, check_ttl: bool, text: str | None = None) -> None:
        """Validate the whole request first (types, TTL, overflow), then apply it: all or nothing.  `text`, the
        request's line protocol, gives its points' order (`parsed` groups them); columns are in request order.

        Except the buckets: like CnosDB's coordinator, lite locates (creates) the points' buckets before
        anything is written, and buckets it created stay even if the write then fails (catalog docstring).
        """
        db = self.database(tenant, database)
        unit = db.time_unit
        converted = {name: _convert_times(lp.data.column("time"), precision, unit) for name, lp in parsed.items()}
        if converted:
            db.locate_buckets(pa.concat_arrays([_array(t) for t in converted.values()]), now,
                              refuse_expired=check_ttl,
                              ordered=None if text is None else lambda: _times_in_order(text, now, precision, unit))
        batches = {}
        for name, lp in parsed.items():
            times = converted[name]
            table = db.tables.get(name)
            if table is None and db.options.strict_write:
                raise errors.table_not_found(name)
            new_columns = {}
            for col, kind in lp.kinds.items():
                known = table.columns.get(col) if table else None
                if col == "time" or (known is not None and known != kind):
                    raise errors.column_type(col, kind, known or "TimestampNanosecond")
                if known is None:
                    new_columns[col] = kind
            batches[name] = (lp.data.set_column(0, "time", times.cast(pa.timestamp(unit))), new_columns)
        for name, (data, new_columns) in batches.items():
            table = db.tables.get(name)
            if table is None:
                ordered = sorted(new_columns.items(), key=lambda kv: (kv[1] != TAG, kv[0]))
                table = db.tables[name] = Table(name, unit, dict(ordered))
            else:
                table.add_columns(new_columns)
            table.upsert(conform(data, table.schema))

    def _maintain(self, now: int) -> None:
        if now - self._last_expire > EXPIRE_EVERY_NS:
            self.expire(now)
        tables = [t for dbs in self.tenants.values() for db in dbs.values() for t in db.tables.values()]
        if (self.wal.size > CHECKPOINT_WAL_BYTES or any(t.full for t in tables)
                or sum(t.mem_bytes for t in tables) > self.memtable_bytes):
            self.checkpoint()

    def expire(self, now: int) -> None:
        """Drop expired buckets with their rows, as CnosDB's TTL service does (every 60 s there)."""
        self._last_expire = now
        for dbs in self.tenants.values():
            for db in dbs.values():
                ranges = db.expire_buckets(now)
                for table in db.tables.values():
                    table.drop_ranges(ranges)

    # -- queries ------------------------------------------------------------------------------------------
    def _select(self, tenant: str, database: str, sql: str, tokens: list[Token]
                ) -> tuple[pa.Table, ScanReport | None]:
        with self._reading_files():
            return self._select_now(tenant, database, sql, tokens)

    def _select_now(self, tenant: str, database: str, sql: str, tokens: list[Token]
                    ) -> tuple[pa.Table, ScanReport | None]:
        """A statement for DataFusion; a missing database has no tables (CnosDB: table not found)."""
        with self.lock:
            db = self.tenant(tenant).get(database)
            tables = db.tables if db is not None else {}
            ctx = self.session(tenant, database) if db is not None else self._no_tables.ctx
            changes = quirks_edits(sql, tokens, tables) if self.quirks else []
            narrowed = _narrowed(tokens, tables) if db is not None else None
            temporary: list[str] = []
            if narrowed is not None:
                table, keep, refs = narrowed
                found = pushdown.selects(tokens)
                traces, everywhere = _pinned_traces(found, table)
                rows = _memtable_rows(table, traces) if traces else None
                source, temporary = self._contexts[(tenant, database)].register_narrowed(
                    table, self.quirks, keep, rows if everywhere else None, traces if everywhere else None)
                changes += [(r.start, r.end, quote_ident(source) + ("" if r.alias else f" AS {quote_ident(r.name)}"))
                            for r in refs]
                changes += _service_hint(found, table, keep, traces, rows)
            text = quirks_apply(sql, changes)
            reads = self._accountant.plan_select(tokens, tables) if self.scan_accounting else None
        try:
            result = self._run(ctx, text, tenant, database)
        finally:
            for name in temporary:
                ctx.deregister_table(name)
        return result, self._report(sql, reads)

    def _show_tags(self, tenant: str, database: str, sql: str, cmd: ddl.ShowTags
                   ) -> tuple[pa.Table, ScanReport | None]:
        with self._reading_files():
            return self._show_tags_now(tenant, database, sql, cmd)

    def _show_tags_now(self, tenant: str, database: str, sql: str, cmd: ddl.ShowTags
                       ) -> tuple[pa.Table, ScanReport | None]:
        database = cmd.database or database
        with self.lock:
            db = self.tenant(tenant).get(database)
            table = db.tables.get(cmd.table) if db is not None else None
            if table is None:
                raise errors.table_not_found(f"{tenant}.{database}.{cmd.table}")
            show_tags.check_where(cmd, table)
            where = sql[cmd.where[0].start:cmd.where[-1].end] if cmd.where else ""
            text = show_tags.to_sql(cmd, table, where)
            needed = show_tags.index_tags(cmd, table) if text is not None else None
            summary = table.tag_summary(needed) if needed is not None else None
            ctx = self.session(tenant, database) if summary is None else _summary_context(table.name, summary)
            reads = self._accountant.plan_index_read(pushdown.where_select(table.name, cmd.where), table) \
                if self.scan_accounting else None
        result = show_tags.empty_tag_values() if text is None else self._run(ctx, text, tenant, database)
        return result, self._report(sql, reads)

    @contextlib.contextmanager
    def _reading_files(self) -> Iterator[None]:
        """Around a query that reads segment files outside the lock: the files a checkpoint (after a merge or a
        rewrite) drops meanwhile are deleted once no query runs, not under a query that planned them."""
        with self.lock:
            self._reading += 1
        try:
            yield
        finally:
            with self.lock:
                self._reading -= 1
                if not self._reading and self._doomed:
                    storage.remove_files(self.data_dir, self._doomed)
                    self._doomed = set()

    def _run(self, ctx: SessionContext, sql: str, tenant: str, database: str) -> pa.Table:
        try:
            result = ctx.sql_with_options(sql, _QUERY_OPTIONS).to_arrow_table()
        except Exception as e:  # DataFusion raises plain Exceptions carrying its error text
            raise _query_error(str(e), tenant, database) from None
        return _finish(result)

    def _report(self, sql: str, reads: list | None) -> ScanReport | None:
        if not reads:
            return None
        report = self._accountant.report(sql, reads)
        self.scans.append(report)
        return report

    def session(self, tenant: str, database: str) -> SessionContext:
        """The database's SessionContext with every changed table re-registered (caller holds the lock).

        A table is a view: the UNION ALL of its segments, each a Parquet scan through the table's whole
        schema (a column a segment lacks reads as null), and of its memtable.  Segments stay registered
        as long as they live and the schema is unchanged; the memtable and the view follow its version."""
        db = self.database(tenant, database)
        state = self._contexts.setdefault((tenant, database), _Context())
        for name in [n for n in state.versions if n not in db.tables]:
            state.drop(name)
        for name, table in db.tables.items():
            version = (id(table), table.version)
            if state.versions.get(name) != version:
                state.register(name, table, hidden=self.quirks)
                state.versions[name] = version
        return state.ctx

    # -- persistence --------------------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Persist all rows to Parquet and start a new WAL generation (caller may hold the lock)."""
        with self.lock:
            self.expire(self.now_ns())
            manifest: storage.JsonObject = {"wal_gen": self.wal.gen + 1, "tenants": {}}
            referenced: set[Path] = set()
            for tenant, dbs in self.tenants.items():
                out_dbs = manifest["tenants"].setdefault(tenant, {})
                for name, db in dbs.items():
                    tables = {}
                    for tname, table in db.tables.items():
                        table.flush(self._table_dir(tenant, name, tname))
                        referenced.update(segment.path for segment in table.segments)
                        tables[tname] = {"columns": list(table.columns.items()), "writes": table.writes,
                                         "files": [sg.file for sg in table.segments],
                                         "segments": [sg.to_json() for sg in table.segments]}
                    out_dbs[name] = {"options": db.options.to_json(), "tables": tables}
            old = self.wal
            self.wal = storage.Wal(self.data_dir / "wal", old.gen + 1)
            old.close()
            previous = self._committed
            self._committed = storage.commit_manifest(self.data_dir, manifest, previous)
            self._checkpointed_gen = self.wal.gen
            # Kept until the next checkpoint: what rebuilds a segment just written (module `recovery`).
            storage.remove_wal_before(self.data_dir / "wal", previous.wal_gen if previous else self.wal.gen)
            if previous:
                referenced |= previous.paths
            referenced |= self._pending
            unreferenced = storage.unreferenced(self.data_dir, referenced)
            if self._reading:                    # queries may still read them: deleted when the last one ends
                self._doomed |= unreferenced
            else:
                storage.remove_files(self.data_dir, unreferenced)
        memory.release()                                # the flushed memtables' memory, back to the system
        if self._compactor is not None:
            self._compactor.nudge()

    # -- compaction (module `compaction`) ----------------------------------------------------------------
    def _next_compaction(self) -> compaction.Job | None:
        with self.lock:
            if self._closed:
                return None
            for tenant, dbs in self.tenants.items():
                for name, db in dbs.items():
                    for tname, table in db.tables.items():
                        inputs = compaction.pick(table, NS_PER[db.time_unit])
                        if inputs is not None:
                            output = self._table_dir(tenant, name, tname) / storage.new_segment_name()
                            self._pending.update((output, output.with_suffix(".tmp")))
                            return compaction.Job(table, inputs, table.schema, output)
        return None

    def _finish_compaction(self, job: compaction.Job, output: Segment | None) -> None:
        with self.lock:
            self._pending.difference_update((job.output, job.output.with_suffix(".tmp")))
            if output is None:                 # a merge that failed or gave up: its partial file goes
                job.output.with_suffix(".tmp").unlink(missing_ok=True)
                job.output.unlink(missing_ok=True)
                return
            if self._closed or not job.table.replace_segments(job.inputs, [output]):
                output.path.unlink(missing_ok=True)
                return
            self.checkpoint()

    def _table_dir(self, tenant: str, database: str, table: str) -> Path:
        return self.data_dir / storage.safe_name(tenant) / storage.safe_name(database) / storage.safe_name(table)

    def _replay(self, header: storage.JsonObject, body: bytes) -> None:
        """Re-apply one logged operation with its original clock; errors mean it was superseded."""
        tenant, database, now = str(header["tenant"]), str(header["db"]), int(header["now"])
        try:
            if header["op"] == "write":
                parsed = line_protocol.parse(body.decode(), now)
                self._apply_write(tenant, database, parsed, str(header["precision"]), now, check_ttl=False)
            elif header["op"] == "columns":
                tables = columnar.from_wal(header["tables"], body)
                self._apply_write(tenant, database, tables, "ns", now, check_ttl=False)
            else:
                text = body.decode()
                command = ddl.parse(single_statement(text), text)
                if command is not None:
                    run_command(self, tenant, database, command, now)
        except errors.CnosDBError:
            pass


def _narrowed(tokens: list[Token], tables: dict[str, Table]
              ) -> tuple[Table, list[Segment], list[pushdown.TableRef]] | None:
    """For a statement on one table whose every SELECT pins the trace ID (or a tag the segments summarise)
    to literals: the table, the segments that may have such rows (module `segments`), and the references
    to the table to point at a view of just those.  None when nothing can be left out: every segment may
    hold such rows and the memtable cannot be narrowed to pinned trace IDs either."""
    found = pushdown.selects(tokens)
    refs = [ref for select in found for ref in select.tables]
    names = {ref.name for ref in refs}
    table = tables.get(names.pop()) if len(names) == 1 else None
    if table is None or not table.segments or any(r.start < 0 for r in refs):
        return None
    pins = [_pins(select, ref, table) for select in found for ref in select.tables]
    if not all(pins):
        return None
    keep = [sg for sg in table.segments if any(_may_hold(sg, p, table) for p in pins)]
    if len(keep) == len(table.segments):
        traces, everywhere = _pinned_traces(found, table)
        if not (traces and everywhere):  # no segment and no memtable row left out: the table's own view
            return None
    return table, keep, refs


def _pinned_traces(found: list[pushdown.Select], table: Table) -> tuple[set[str], bool]:
    """The trace IDs the statement's SELECTs pin the trace ID to, and whether every reference to `table` is
    so pinned (then no row of another trace can reach the result)."""
    trace = segments.trace_tag(table.tags())
    values: set[str] = set()
    everywhere = True
    for select in found:
        for ref in select.tables:
            pinned = _pins(select, ref, table).get(trace) if trace is not None else None
            if pinned:
                values.update(pinned)
            else:
                everywhere = False
    return values, everywhere


def _memtable_rows(table: Table, traces: set[str]) -> pa.Table:
    """The memtable's rows of the trace IDs `traces`."""
    trace = segments.trace_tag(table.tags())
    wanted = pa.array(sorted(traces), pa.string())
    mem = pa.Table.from_batches(table.memtable_batches(), table.schema)
    return mem.filter(pc.is_in(mem.column(trace), value_set=wanted))


def _service_hint(found: list[pushdown.Select], table: Table, keep: list[Segment], traces: set[str],
                  memtable: pa.Table | None) -> list[tuple[int, int, str]]:
    """Edits that add to every SELECT pinning the trace ID the services those traces may have (from the
    segments' `TraceIndex` and the memtable's rows of `traces`): true for every row the statement can
    return, and it lets the scan prune to those services' rows when segments are sorted by service (module
    `segments`, `SORT_BY_SERVICE`)."""
    tags = table.tags()
    service, trace = segments.service_tag(tags), segments.trace_tag(tags)
    if not segments.SORT_BY_SERVICE or service is None or trace is None or memtable is None:
        return []
    targets = [(select, refs) for select in found
               if (refs := [ref for ref in select.tables if _pins(select, ref, table).get(trace)])]
    keys: set[str] = set()
    for segment in keep:
        if segment.ids is None:
            return []
        keys |= segment.ids.services(traces)
    keys |= {segments.NO_SERVICE if v is None else v for v in pc.unique(memtable.column(service)).to_pylist()}
    names = ", ".join(map(_literal, sorted(keys - {segments.NO_SERVICE})))
    edits = []
    for select, refs in targets:
        conditions = []
        for ref in refs:
            column = (quote_ident(ref.qualifier) + "." if len(select.tables) > 1 else "") + quote_ident(service)
            parts = [f"{column} IN ({names})"] if names else []
            parts += [f"{column} IS NULL"] if segments.NO_SERVICE in keys else []
            conditions.append(f"({' OR '.join(parts)})" if parts else "FALSE")
        first, last = select.where[0].start, select.where[-1].end
        edits += [(first, first, "("), (last, last, ") AND " + " AND ".join(conditions))]
    return edits


def _pins(select: pushdown.Select, ref: pushdown.TableRef, table: Table) -> dict[str, tuple[str, ...]]:
    """Tag -> the literals a top-level conjunct of `select` holds it to, for the reference `ref`."""
    out: dict[str, tuple[str, ...]] = {}
    for conjunct in select.where:
        found = pushdown.equality_domain(conjunct)
        if found is None:
            continue
        column, values = found
        owner = pushdown.resolve(select, column, {table.name: table})
        if owner is not None and owner[0] == ref and table.columns.get(column.name) == TAG:
            out[column.name] = values
    return out


def _may_hold(segment: Segment, pins: dict[str, tuple[str, ...]], table: Table) -> bool:
    trace = segments.trace_tag(table.tags())
    for tag, values in pins.items():
        if tag == trace and segment.ids is not None and not any(segment.ids.may_hold(v) for v in values):
            return False
        summary = segment.summary
        if summary is not None and tag in summary.column_names and not pc.any(
                pc.is_in(summary.column(tag), value_set=pa.array(values, pa.string()))).as_py():
            return False
    return True


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _segment_name(segment: Segment) -> str:
    return f"__seg_{segment.id}"


def _visible(schema: pa.Schema, hidden: bool) -> pa.Schema:
    """The columns queries see: the write-number column only in quirks mode (module `table`)."""
    return schema if hidden else schema.remove(schema.get_field_index(WRITE_COL))


def _summary_context(name: str, summary: pa.Table) -> SessionContext:
    """A session in which table `name` is just its distinct tag combinations (SHOW TAG VALUES / SERIES)."""
    ctx = SessionContext()
    ctx.register_record_batches(name, [summary.to_batches() or [pa.RecordBatch.from_pylist([], summary.schema)]])
    return ctx


def _convert_times(times: pa.Array | pa.ChunkedArray, precision: str, unit: str) -> pa.Array:
    """Request precision to the database's, as CnosDB's `timestamp_convert` (overflow is an error)."""
    src, dst = NS_PER[precision], NS_PER[unit]
    if src == dst:
        return times
    try:
        if src > dst:
            return pc.multiply_checked(times, src // dst)
        return pc.divide(times, dst // src)
    except pa.ArrowInvalid:
        raise errors.coordinator_common("timestamp overflow") from None


def _array(times: pa.Array | pa.ChunkedArray) -> pa.Array:
    return times.combine_chunks() if isinstance(times, pa.ChunkedArray) else times


def _times_in_order(text: str, now: int, precision: str, unit: str) -> pa.Array:
    """The request's timestamps in line order (the parsed tables group lines by table and shape)."""
    stamps, pos = [], 0
    while pos < len(text):
        line, pos = lp_exact.parse_one(text, pos, now)
        if line is not None:
            stamps.append(line.timestamp)
    return _array(_convert_times(pa.array(stamps, pa.int64()), precision, unit))


def _plain_type(t: pa.DataType) -> pa.DataType:
    """`t` with string views (how string columns are scanned, see `Table.query_batches`) as plain strings."""
    if t == pa.string_view():
        return pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = _plain_type(t.value_type)
        if inner == t.value_type:
            return t
        field = t.value_field.with_type(inner)
        if pa.types.is_fixed_size_list(t):
            return pa.list_(field, t.list_size)
        return pa.large_list(field) if pa.types.is_large_list(t) else pa.list_(field)
    if pa.types.is_struct(t):
        fields = [t.field(i).with_type(_plain_type(t.field(i).type)) for i in range(t.num_fields)]
        return pa.struct(fields)
    if pa.types.is_dictionary(t) and t.value_type == pa.string_view():
        return pa.dictionary(t.index_type, pa.string())
    return t


def _query_error(message: str, tenant: str, database: str) -> errors.CnosDBError:
    """DataFusion's error as CnosDB reports the same failure (its table lookup and parser errors carry
    their own codes; everything else is 010001 Datafusion)."""
    message = message.removeprefix("DataFusion error: ")
    if m := _TABLE_NOT_FOUND.match(message):
        schema, _, name = m.group(1).removeprefix("datafusion.").rpartition(".")
        db = database if schema in ("", "public") else schema
        return errors.table_not_found(f"{tenant}.{db}.{name}")
    if m := _PARSER_ERROR.match(message):
        text = m.group(1).replace('\\"', '"').replace("\\\\", "\\")
        text = re.sub(r" at Line: \d+, Column: \d+$", "", text).replace("Expected: ", "Expected ", 1)
        return errors.sql_parser(text)
    return errors.datafusion(_HIDDEN_FIELD.sub("", message).replace(".\nValid fields", ". Valid fields"))


def _finish(result: pa.Table) -> pa.Table:
    """DataFusion's result as CnosDB shows it: plain strings, CnosDB's name for count(*), no hidden column."""
    result = _plain(result)
    if WRITE_COL in result.column_names:
        result = result.drop_columns([WRITE_COL])
    if result.column_names == ["column_name", "data_type", "is_nullable"]:     # DataFusion's DESCRIBE
        result = result.filter(pc.not_equal(result.column("column_name"), WRITE_COL))
    if "count(*)" in result.column_names:
        result = result.rename_columns([COUNT_STAR if n == "count(*)" else n for n in result.column_names])
    return result


def _plain(result: pa.Table) -> pa.Table:
    schema = result.schema
    plain = pa.schema([f.with_type(_plain_type(f.type)) for f in schema], metadata=schema.metadata)
    return result if plain.equals(schema) else result.cast(plain)
