"""CnosDB's own statements (databases, CnosDB-style CREATE TABLE, DESCRIBE, SHOW, DELETE, INSERT VALUES).

`parse()` returns a command dataclass for these and None for anything else, which then goes to DataFusion
(SELECT, WITH, EXPLAIN, ...).  Grammar and error texts follow CnosDB's `ExtParser` (sqlparser errors:
`Expected X, found: Y`), e.g. an unknown `WITH` option ends the option list and fails as
`Expected end of statement`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import DatabaseOptions, parse_duration
from .errors import semantic, sql_parser
from .lp_exact import BOOL, F64, I64, STRING, U64
from .sql_text import Cursor, Token

_FIELD_TYPES = {"BIGINT": I64, "DOUBLE": F64, "STRING": STRING, "BOOLEAN": BOOL}
_OPTIONS = ("TTL", "SHARD", "VNODE_DURATION", "REPLICA", "PRECISION", "MAX_MEMCACHE_SIZE",
            "MEMCACHE_PARTITIONS", "WAL_MAX_FILE_SIZE", "WAL_SYNC", "STRICT_WRITE", "MAX_CACHE_READERS")
_ALTERABLE = ("TTL", "SHARD", "VNODE_DURATION", "REPLICA")


@dataclass
class CreateDatabase:
    name: str
    if_not_exists: bool
    options: DatabaseOptions


@dataclass
class AlterDatabase:
    name: str
    changes: dict[str, object]


@dataclass
class DropDatabase:
    name: str
    if_exists: bool


@dataclass
class CreateTable:
    name: str
    if_not_exists: bool
    columns: dict[str, str]          # name -> kind (TAG or a field kind)


@dataclass
class DropTable:
    name: str
    if_exists: bool


@dataclass
class Show:
    what: str                        # DATABASES or TABLES


@dataclass
class ShowTags:
    """SHOW TAG VALUES (`keys` set: operator `=`, `!=`, `IN` or `NOT IN` and names) or SHOW SERIES."""

    database: str | None
    table: str
    keys: tuple[str, tuple[str, ...]] | None
    where: list[Token]
    tail: str                        # ORDER BY / LIMIT / OFFSET, as written


@dataclass
class Describe:
    what: str                        # TABLE or DATABASE
    name: str


@dataclass
class Delete:
    table: str
    where: str | None
    where_idents: list[str] = field(default_factory=list)


@dataclass
class Insert:
    table: str
    columns: list[str]
    rows: list[list[object]]


Command = CreateDatabase | AlterDatabase | DropDatabase | CreateTable | DropTable | Show | ShowTags | Describe \
    | Delete | Insert


def parse(tokens: list[Token], sql: str) -> Command | None:
    c = Cursor(tokens, sql)
    if c.kw("CREATE", "DATABASE"):
        if_not_exists = c.kw("IF", "NOT", "EXISTS")
        name = _plain_name(c)
        options = DatabaseOptions()
        if c.kw("WITH"):
            _apply_options(c, options.__dict__, _OPTIONS)
        c.expect_end()
        return CreateDatabase(name, if_not_exists, options)
    if c.kw("ALTER", "DATABASE"):
        name = c.ident()
        c.expect_kw("SET")
        changes: dict[str, object] = {}
        _apply_options(c, changes, _ALTERABLE)
        if not changes:
            c.fail("a database option")
        c.expect_end()
        return AlterDatabase(name, changes)
    if c.kw("DROP", "DATABASE"):
        if_exists = c.kw("IF", "EXISTS")
        name = c.ident()
        c.expect_end()
        return DropDatabase(name, if_exists)
    if c.kw("CREATE", "TABLE"):
        return _create_table(c)
    if c.kw("DROP", "TABLE"):
        if_exists = c.kw("IF", "EXISTS")
        name = c.object_name()
        c.expect_end()
        return DropTable(name, if_exists)
    if c.kw("SHOW"):
        if c.kw("TAG"):
            c.expect_kw("VALUES")
            return _show_tags(c, tag_values=True)
        if c.kw("SERIES"):
            return _show_tags(c, tag_values=False)
        if c.kw("DATABASES") or c.kw("TABLES"):
            what = tokens[1].value.upper()
            c.expect_end()
            return Show(what)
        c.fail("TABLES or DATABASES")
    if (t := c.peek()) is not None and t.is_kw("DESCRIBE", "DESC") and (t1 := c.peek(1)) is not None \
            and t1.is_kw("TABLE", "DATABASE"):
        c.next()
        what = c.next().value.upper()
        name = c.object_name() if what == "TABLE" else c.ident()
        c.expect_end()
        return Describe(what, name)
    if c.kw("DELETE"):
        c.expect_kw("FROM")
        table = c.object_name()
        if c.at_end():
            return Delete(table, None)
        c.expect_kw("WHERE")
        idents = [t.value for t in tokens[c.i:] if t.kind in ("word", "qident")]
        return Delete(table, c.rest_text(), idents)
    if (t := c.peek()) is not None and t.is_kw("INSERT") and _is_values_insert(tokens):
        return _insert(c)
    return None


def _show_tags(c: Cursor, tag_values: bool) -> ShowTags:
    """CnosDB's `parse_show_tag_values` / `parse_show_series`: `[ON db] FROM table [WITH KEY ...]
    [WHERE expr] [ORDER BY ...] [LIMIT n] [OFFSET m]`; the table is one identifier."""
    database = c.ident() if c.kw("ON") else None
    c.expect_kw("FROM")
    table = c.ident()
    keys: tuple[str, tuple[str, ...]] | None = None
    if tag_values:
        c.expect_kw("WITH")
        c.expect_kw("KEY")
        if c.op("="):
            keys = ("=", (c.ident(),))
        elif c.op("!=") or c.op("<>"):
            keys = ("!=", (c.ident(),))
        elif (negated := c.kw("NOT", "IN")) or c.kw("IN"):
            op = "NOT IN" if negated else "IN"
            c.expect_op("(")
            names = [c.ident()]
            while c.op(","):
                names.append(c.ident())
            c.expect_op(")")
            keys = (op, tuple(names))
        else:
            c.fail("=, !=, <>, IN, NOT IN")
    where: list[Token] = []
    if c.kw("WHERE"):
        depth = 0
        while (t := c.peek()) is not None and not (depth == 0 and t.is_kw("ORDER", "LIMIT", "OFFSET")):
            depth += {"(": 1, ")": -1}.get(t.text, 0) if t.kind == "op" else 0
            where.append(c.next())
        if not where:
            c.fail("an expression:")
    tail = c.rest_text()
    if tail and (t := c.peek()) is not None and not t.is_kw("ORDER", "LIMIT", "OFFSET"):
        c.fail("end of statement")
    return ShowTags(database, table, keys, where, tail)


def _plain_name(c: Cursor) -> str:
    name = c.ident()
    if "/" in name:
        raise sql_parser(f"not supported keyword contains '/': {name}")
    return name


def _apply_options(c: Cursor, out: dict[str, object], allowed: tuple[str, ...]) -> None:
    """Space-separated `KEY [=] value` pairs; stops at the first word that is not an allowed option."""
    while (t := c.peek()) is not None and t.is_kw(*allowed):
        c.next()
        key = t.value.upper()
        c.op("=")
        v = c.next()
        if key in ("SHARD", "REPLICA", "MEMCACHE_PARTITIONS", "MAX_CACHE_READERS"):
            if v.kind != "number" or not v.value.isdigit():
                raise sql_parser(f"this option should be a unsigned number, but get {v.text}")
            n = int(v.value)
            if n == 0 and key in ("SHARD", "REPLICA"):
                raise sql_parser(f"{key.lower() if key == 'REPLICA' else 'shard'} number should be greater than 0")
            out[key.lower()] = n
            continue
        if v.kind not in ("string", "number"):
            raise sql_parser(f"Expected literal string, found: {v.text}")
        text = v.value
        if key in ("TTL", "VNODE_DURATION"):
            out[f"{key.lower()}_ns"] = parse_duration(text)
        elif key == "PRECISION":
            if text.lower() not in ("ms", "us", "ns"):
                raise sql_parser(f"{text} is not a valid precision, use 'ms', 'us' or 'ns'")
            out["precision"] = text.lower()
        elif key in ("WAL_SYNC", "STRICT_WRITE"):
            out[key.lower()] = text.lower() == "true"
        else:
            out[key.lower()] = text


def _create_table(c: Cursor) -> CreateTable:
    if_not_exists = c.kw("IF", "NOT", "EXISTS")
    name = _plain_name(c)
    c.expect_op("(")
    columns: dict[str, str] = {}
    while True:
        if c.kw("TAGS"):
            c.expect_op("(")
            while True:
                tag = c.ident()
                if tag in columns:
                    raise semantic(f"Field or Tag have the same name {tag}", "010027")
                columns[tag] = "TAG"
                if not c.op(","):
                    break
            c.expect_op(")")
            c.expect_op(")")
            break
        col = c.ident()
        kind = _field_type(c, col)
        if c.kw("CODEC"):
            c.expect_op("(")
            c.ident()
            c.expect_op(")")
        if col in columns:
            raise semantic(f"Field or Tag have the same name {col}", "010027")
        if kind is not None:
            columns[col] = kind
        if c.op(")"):
            break
        c.expect_op(",")
    c.expect_end()
    if not any(k != "TAG" for k in columns.values()):
        raise semantic("There must be at least one field column.", "010032")
    return CreateTable(name, if_not_exists, columns)


def _field_type(c: Cursor, col: str) -> str | None:
    t = c.next()
    word = t.value.upper() if t.kind == "word" else ""
    if word == "BIGINT":
        return U64 if c.kw("UNSIGNED") else I64
    if word == "TIMESTAMP":
        if col != "time":
            raise semantic("column time already exists")
        return None
    if word in _FIELD_TYPES:
        return _FIELD_TYPES[word]
    raise sql_parser(f"Expected a data type name, found: {t.text}")


def _is_values_insert(tokens: list[Token]) -> bool:
    return any(t.is_kw("VALUES") for t in tokens)


def _insert(c: Cursor) -> Insert:
    c.expect_kw("INSERT")
    c.kw("INTO")
    table = c.object_name()
    c.expect_op("(")
    columns = [c.ident()]
    while c.op(","):
        columns.append(c.ident())
    c.expect_op(")")
    c.expect_kw("VALUES")
    rows = []
    while True:
        c.expect_op("(")
        row = [_literal(c)]
        while c.op(","):
            row.append(_literal(c))
        c.expect_op(")")
        if len(row) != len(columns):
            raise semantic("Insert columns and Source columns not match", "010045")
        rows.append(row)
        if not c.op(","):
            break
    c.expect_end()
    return Insert(table, columns, rows)


def _literal(c: Cursor) -> object:
    sign = -1 if c.op("-") else 1
    t = c.next()
    if t.kind == "number":
        v = float(t.value) if any(ch in t.value for ch in ".eE") else int(t.value)
        return sign * v
    if t.kind == "string":
        return t.value
    if t.is_kw("TRUE", "FALSE"):
        return t.value.upper() == "TRUE"
    if t.is_kw("NULL"):
        return None
    raise sql_parser(f"Expected a literal value, found: {t.text}")
