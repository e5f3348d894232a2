"""Which WHERE conjuncts CnosDB hands to its storage engine, read from a statement's tokens.

CnosDB's DataFusion 27 fork splits a scan's filter into top-level conjuncts and asks the tskv table
provider about each (`supports_filter_pushdown`): `<column> <op> <literal>` in either order, op one of
`= < <= > >=`, is pushed down *exact* (`expr_utils::can_exact_filter`) and DataFusion drops its own copy;
every other conjunct stays in DataFusion's filter too.  Before that, the optimizer turns `col IN (1–3
literals)` into an OR chain of equalities, so `IN (x)` becomes `col = x`.  The tag index
(`ColumnDomains`) is narrowed by equalities of a tag with a literal and by OR chains of 1–3 of them on one
tag; from 4 values on the list stays (or is folded back into) an IN list whose domain is "all".

This module finds, for every SELECT of a statement (union branches, subqueries), its tables and its
top-level WHERE conjuncts with their positions in the text; `quirks` rewrites some of them, `scan`
derives the tag-index domains.  It works on tokens rather than on DataFusion's plan because the quirk is
applied as a rewrite of the statement text, and positions are only known there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .sql_text import Token

EXACT_OPS = ("=", "<", "<=", ">", ">=")
_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_BRANCH_END = ("UNION", "INTERSECT", "EXCEPT")
_WHERE_END = ("GROUP", "ORDER", "LIMIT", "OFFSET", "HAVING", "WINDOW", "QUALIFY")
_NOT_ALIAS = ("ON", "USING", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "NATURAL", "WHERE",
              "GROUP", "ORDER", "LIMIT", "OFFSET", "HAVING", "UNION", "INTERSECT", "EXCEPT", "WINDOW")


@dataclass(frozen=True)
class TableRef:
    """A table named in a FROM clause; `qualifier` is how columns refer to it; `start`/`end` are the
    character offsets of its (possibly dotted) name in the SQL."""

    name: str
    alias: str | None
    start: int = field(default=-1, compare=False)
    end: int = field(default=-1, compare=False)

    @property
    def qualifier(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class ColumnRef:
    qualifier: str | None
    name: str


@dataclass(frozen=True)
class Conjunct:
    """One top-level AND term of a WHERE clause; `start`/`end` are its character offsets in the SQL."""

    tokens: tuple[Token, ...]

    @property
    def start(self) -> int:
        return self.tokens[0].start

    @property
    def end(self) -> int:
        return self.tokens[-1].end


@dataclass(frozen=True)
class Select:
    tables: tuple[TableRef, ...]
    where: tuple[Conjunct, ...]


def selects(tokens: list[Token]) -> list[Select]:
    """Every SELECT in the statement, outermost first, with its FROM tables and WHERE conjuncts."""
    depth = _depths(tokens)
    out = []
    for i, token in enumerate(tokens):
        if token.is_kw("SELECT"):
            out.append(_select(tokens, depth, i))
    return out


class HasColumns(Protocol):
    columns: dict[str, str]


T = TypeVar("T", bound=HasColumns)


def resolve(select: Select, column: ColumnRef, tables: Mapping[str, T]) -> tuple[TableRef, T] | None:
    """The table of `select` a column reference belongs to (None when unknown or ambiguous)."""
    if column.qualifier is not None:
        refs = [r for r in select.tables if column.qualifier in (r.qualifier, r.name)]
    else:
        refs = [r for r in select.tables if r.name in tables and column.name in tables[r.name].columns]
    if len(refs) != 1 or refs[0].name not in tables:
        return None
    return refs[0], tables[refs[0].name]


def where_select(table: str, where: list[Token]) -> Select:
    """A one-table Select for a WHERE clause of CnosDB's own statements (SHOW TAG VALUES, SHOW SERIES)."""
    return Select((TableRef(table, None),), tuple(Conjunct(c) for c in _conjuncts(tuple(where))))


def exact_pushdown(conjunct: Conjunct) -> ColumnRef | None:
    """The column of a conjunct CnosDB pushes down as an exact filter, else None."""
    toks = _strip_parens(conjunct.tokens)
    found = _comparison(toks)
    if found is not None and found[1] in EXACT_OPS:
        return found[0]
    found_in = _in_list(toks)
    if found_in is not None and len(found_in[1]) == 1:   # IN (x) is planned as `col = x`
        return found_in[0]
    return None


def equality_domain(conjunct: Conjunct) -> tuple[ColumnRef, tuple[str, ...]] | None:
    """`col = lit`, `col IN (lits)` or an OR chain of those on one column: the column and its values."""
    toks = _strip_parens(conjunct.tokens)
    column: ColumnRef | None = None
    values: list[str] = []
    for part in _split(toks, "OR"):
        part = _strip_parens(part)
        cmp = _comparison(part)
        found = (cmp[0], (cmp[2],)) if cmp is not None and cmp[1] == "=" else _in_list(part)
        if found is None or (column is not None and found[0] != column):
            return None
        column = found[0]
        values.extend(found[1])
    return (column, tuple(values)) if column is not None else None


# -- structure ---------------------------------------------------------------------------------------------

def _depths(tokens: list[Token]) -> list[int]:
    """Parenthesis depth of each token; a `)` counts as inside the group it closes."""
    out, depth = [], 0
    for t in tokens:
        out.append(depth)
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
    return out


def _select(tokens: list[Token], depth: list[int], i: int) -> Select:
    d = depth[i]
    end = i + 1
    while end < len(tokens) and depth[end] >= d:
        t = tokens[end]
        if depth[end] == d and (t.is_kw(*_BRANCH_END) or (t.kind == "op" and t.text == ")")):
            break
        end += 1
    top = [k for k in range(i + 1, end) if depth[k] == d]
    from_at = next((k for k in top if tokens[k].is_kw("FROM")), None)
    where_at = next((k for k in top if tokens[k].is_kw("WHERE")), None)
    if from_at is None:
        return Select((), ())
    from_end = where_at if where_at is not None else next(
        (k for k in top if k > from_at and tokens[k].is_kw(*_WHERE_END)), end)
    tables = _tables(tokens, depth, from_at + 1, from_end, d)
    if where_at is None:
        return Select(tables, ())
    where_end = next((k for k in top if k > where_at and tokens[k].is_kw(*_WHERE_END)), end)
    return Select(tables, tuple(Conjunct(c) for c in _conjuncts(tuple(tokens[where_at + 1:where_end]))))


def _tables(tokens: list[Token], depth: list[int], start: int, end: int, d: int) -> tuple[TableRef, ...]:
    """Plain table references of a FROM clause (subqueries and table functions are not tables)."""
    out = []
    k = start
    while k < end:
        if depth[k] == d and (k == start or tokens[k - 1].is_kw("JOIN")
                              or (tokens[k - 1].kind == "op" and tokens[k - 1].text == ",")):
            ref = _table_ref(tokens, k, end)
            if ref is not None:
                out.append(ref)
        k += 1
    return tuple(out)


def _table_ref(tokens: list[Token], k: int, end: int) -> TableRef | None:
    if tokens[k].kind not in ("word", "qident"):
        return None
    name = tokens[k].value
    first, last = tokens[k].start, tokens[k].end
    k += 1
    while k + 1 < end and tokens[k].text == "." and tokens[k + 1].kind in ("word", "qident"):
        name = tokens[k + 1].value
        last = tokens[k + 1].end
        k += 2
    if k < end and tokens[k].text == "(":
        return None                      # a table function
    alias = None
    if k < end and tokens[k].is_kw("AS"):
        k += 1
    if k < end and (tokens[k].kind == "qident" or (tokens[k].kind == "word" and not tokens[k].is_kw(*_NOT_ALIAS))):
        alias = tokens[k].value
    return TableRef(name, alias, first, last)


def _conjuncts(toks: tuple[Token, ...]) -> list[tuple[Token, ...]]:
    """Split on top-level AND (not BETWEEN's), flattening parenthesised conjunctions."""
    out = []
    for part in _split(toks, "AND"):
        inner = _strip_parens(part)
        if inner is not part and len(_split(inner, "AND")) > 1:
            out.extend(_conjuncts(inner))
        elif part:
            out.append(part)
    return out


def _split(toks: tuple[Token, ...], word: str) -> list[tuple[Token, ...]]:
    parts: list[tuple[Token, ...]] = []
    depth, begin, between = 0, 0, False
    for k, t in enumerate(toks):
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        elif depth == 0 and t.is_kw("BETWEEN"):
            between = True
        elif depth == 0 and t.is_kw(word):
            if word == "AND" and between:
                between = False
                continue
            parts.append(toks[begin:k])
            begin = k + 1
    parts.append(toks[begin:])
    return parts


def _strip_parens(toks: tuple[Token, ...]) -> tuple[Token, ...]:
    while len(toks) >= 2 and toks[0].text == "(" and toks[-1].text == ")" and toks[0].kind == "op":
        depth = 0
        for k, t in enumerate(toks):
            if t.kind == "op" and t.text == "(":
                depth += 1
            elif t.kind == "op" and t.text == ")":
                depth -= 1
                if depth == 0 and k != len(toks) - 1:
                    return toks
        toks = toks[1:-1]
    return toks


# -- shapes ------------------------------------------------------------------------------------------------

def _column(toks: tuple[Token, ...]) -> ColumnRef | None:
    if len(toks) == 1 and toks[0].kind in ("word", "qident"):
        return ColumnRef(None, toks[0].value)
    if len(toks) == 3 and toks[1].text == "." and all(t.kind in ("word", "qident") for t in toks[::2]):
        return ColumnRef(toks[0].value, toks[2].value)
    return None


def _literal(toks: tuple[Token, ...]) -> str | None:
    """A literal's value as text: a string, a (signed) number, TRUE or FALSE."""
    if len(toks) == 1:
        t = toks[0]
        if t.kind in ("string", "number"):
            return t.value
        if t.is_kw("TRUE", "FALSE"):
            return t.value.lower()
    if len(toks) == 2 and toks[0].text in ("-", "+") and toks[1].kind == "number":
        return toks[0].text.lstrip("+") + toks[1].value
    return None


def _comparison(toks: tuple[Token, ...]) -> tuple[ColumnRef, str, str] | None:
    """`col op lit` or `lit op col` (op normalised to the column-first reading)."""
    ops = [k for k, t in enumerate(toks) if t.kind == "op" and t.text in ("=", "<", "<=", ">", ">=", "<>", "!=")]
    if len(ops) != 1:
        return None
    k = ops[0]
    op = toks[k].text
    left, right = toks[:k], toks[k + 1:]
    column, value = _column(left), _literal(right)
    if column is not None and value is not None:
        return column, op, value
    column, value = _column(right), _literal(left)
    if column is not None and value is not None and op in _FLIP:
        return column, _FLIP[op], value
    return None


def _in_list(toks: tuple[Token, ...]) -> tuple[ColumnRef, tuple[str, ...]] | None:
    """`col IN (lit, ...)` (not NOT IN)."""
    at = next((k for k, t in enumerate(toks) if t.is_kw("IN")), None)
    if at is None or at + 1 >= len(toks) or toks[at + 1].text != "(" or toks[-1].text != ")":
        return None
    column = _column(toks[:at])
    if column is None:
        return None
    values = []
    for item in _split_commas(toks[at + 2:-1]):
        value = _literal(item)
        if value is None:
            return None
        values.append(value)
    return (column, tuple(values)) if values else None


def _split_commas(toks: tuple[Token, ...]) -> list[tuple[Token, ...]]:
    parts, begin = [], 0
    for k, t in enumerate(toks):
        if t.kind == "op" and t.text in ("(", ")"):
            return [toks]                # nested expressions: not a literal list
        if t.kind == "op" and t.text == ",":
            parts.append(toks[begin:k])
            begin = k + 1
    parts.append(toks[begin:])
    return parts
