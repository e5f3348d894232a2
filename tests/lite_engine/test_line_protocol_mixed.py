"""Differential test: the mixed-shape bulk path (`_mixed`) against the exact parser (`lp_exact`).

Requests of one table whose lines have different tag and field sets (as the plugin writes spans), with
escapes in names and values, strings holding separators, quotes and newlines, and slices cut small so
that slice boundaries fall everywhere.  Valid requests must give the exact parser's columns and rows;
requests whose lines differ only in a field's type, or with a syntax error, must give its error.
"""

from __future__ import annotations

import random

import pytest

from cnosdb_lite import CnosDBError
from cnosdb_lite import line_protocol as lp
from cnosdb_lite.lp_exact import LpError

NOW = 1_700_000_000_000_000_000
TAG_KEYS = ["service", "trace_id", "span_id", "parent", "name", "st\\ atus", "a\\,b", "k\\=v", "q\\\"t", "ünï"]
FIELD_KINDS = {"kind": "s", "end": "f", "dur": "i", "n": "u", "ok": "b", "attr/http.url": "s",
               "attr/db\\ stmt": "s", "Event_0/name": "s", "Event_0/t": "f", "Event_1/x": "i", "err": "b",
               "m\\ x": "s", "e\\=q": "f", "msg": "s"}
STRING_PARTS = ["GET", " ", ",", "=", "\\\"", "\\\\", "\n", "x", "ä", "'", "\\'", "", "SELECT 1", "a=b,c d"]
TAG_PARTS = ["v", "\\ ", "\\,", "\\=", "\\\\", "\\\"", "\\'", "1", "é", "x/y"]


def value(kind: str, rnd: random.Random) -> str:
    if kind == "s":
        return '"' + "".join(rnd.choice(STRING_PARTS) for _ in range(rnd.randrange(4))) + '"'
    if kind == "f":
        return rnd.choice(["1", "-2.5", "3e5", "0.125", "+7", "1E-3", "42."])
    if kind == "i":
        return f"{rnd.randrange(-10**12, 10**12)}i"
    if kind == "u":
        return f"{rnd.randrange(10**15)}u"
    return rnd.choice(["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"])


def tag_value(rnd: random.Random) -> str:
    return "".join(rnd.choice(TAG_PARTS) for _ in range(rnd.randrange(1, 4)))


def request(rnd: random.Random, lines: int, kinds: dict[str, str], stamps: bool = True,
            twice: bool = False) -> str:
    shapes = [(rnd.sample(TAG_KEYS, rnd.randrange(len(TAG_KEYS) + 1)),
               rnd.sample(list(kinds), rnd.randrange(1, len(kinds) + 1))) for _ in range(rnd.randrange(1, 6))]
    if twice:                                    # a key twice in a line: the exact parser keeps the first
        tags, fields = shapes[-1]
        shapes[-1] = (tags + tags[:1], fields) if tags and rnd.random() < 0.5 else (tags, fields + fields[:1])
    out = []
    for i in range(lines):
        tags, fields = rnd.choice(shapes)
        head = "spans" + "".join(f",{k}={tag_value(rnd)}" for k in tags)
        body = ",".join(f"{k}={value(kinds[k], rnd)}" for k in fields)
        out.append(f"{head} {body}" + (f" {NOW + rnd.randrange(-5, 5) * 1000 + i}" if stamps else ""))
    return "\n".join(out) + rnd.choice(["", "\n"])


def exact(text: str) -> dict[str, lp.LpTable]:
    try:
        lines = lp._parse_all_exact(text, NOW)
    except LpError as err:
        raise err.as_cnosdb(text) from None
    return {table: lp._assemble([part]) for table, part in lp._rows_to_parts(lines)}


def outcome(parse, text: str) -> object:
    try:
        result = parse(text)
    except CnosDBError as err:
        return ("error", err.status, err.code, err.message)
    out = {}
    for table, t in result.items():
        names = sorted(t.data.column_names)
        out[table] = (dict(t.kinds), names, t.data.select(names).to_pylist())
    return out


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lp, "_SLICE_LINES", 7)


@pytest.mark.parametrize("seed", range(60))
def test_mixed_shapes_match_exact(seed: int) -> None:
    rnd = random.Random(seed)
    text = request(rnd, rnd.randrange(1, 60), FIELD_KINDS, stamps=seed % 5 != 0)
    expected = outcome(exact, text)
    assert outcome(lambda t: lp.parse(t, NOW), text) == expected
    if expected != {} and not isinstance(expected, tuple):
        assert lp._mixed(text, NOW) is not None, "the mixed path should take a valid one-table request"


@pytest.mark.parametrize("seed", range(40))
def test_shapes_differing_only_in_field_type_error_as_exact(seed: int) -> None:
    rnd = random.Random(1000 + seed)
    key = rnd.choice(list(FIELD_KINDS))
    other = rnd.choice([k for k in "sfiub" if k != FIELD_KINDS[key]])
    first = request(rnd, rnd.randrange(1, 25), FIELD_KINDS)
    second = request(rnd, rnd.randrange(1, 25), {**FIELD_KINDS, key: other})
    text = first.rstrip("\n") + "\n" + second
    expected = outcome(exact, text)
    assert outcome(lambda t: lp.parse(t, NOW), text) == expected
    if f"{key}=" in first and f"{key}=" in second:
        assert expected[0] == "error" and expected[2] == "050014"


@pytest.mark.parametrize("seed", range(40))
def test_mutated_requests_match_exact(seed: int) -> None:
    """Random damage (a character dropped, doubled or replaced) gives the exact parser's rows or error."""
    rnd = random.Random(2000 + seed)
    text = request(rnd, rnd.randrange(1, 30), FIELD_KINDS)
    for _ in range(rnd.randrange(1, 3)):
        i = rnd.randrange(len(text))
        text = rnd.choice([text[:i] + text[i + 1:], text[:i] + text[i] + text[i:],
                           text[:i] + rnd.choice(' ,="\\\n=x#\t') + text[i + 1:]])
    assert outcome(lambda t: lp.parse(t, NOW), text) == outcome(exact, text)


@pytest.mark.parametrize("seed", range(20))
def test_duplicate_keys_match_exact(seed: int) -> None:
    rnd = random.Random(3000 + seed)
    text = request(rnd, rnd.randrange(1, 30), FIELD_KINDS, twice=True)
    assert outcome(lambda t: lp.parse(t, NOW), text) == outcome(exact, text)


def test_key_both_tag_and_field_matches_exact() -> None:
    for text in ("m,a=x a=1 1\nm,b=y c=2 2", "m,a=x b=1 1\nm c=2,a=3 2"):
        assert outcome(lambda t: lp.parse(t, NOW), text) == outcome(exact, text)


def test_plugin_request_takes_the_mixed_path() -> None:
    pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from bench.encode import make_request
    from cnosdb_jaeger_storage.cnosdb.line_protocol import encode_resource_spans

    lines = []
    for seed in range(3):
        lines += encode_resource_spans("jaeger_spans",
                                       ExportTraceServiceRequest.FromString(make_request(seed)).resource_spans)
    text = "\n".join(lines)
    assert lp._uniform(text, NOW) is None
    assert lp._mixed(text, NOW) is not None
    assert outcome(lambda t: lp.parse(t, NOW), text) == outcome(exact, text)


def test_bool_column_needs_the_equals_sign() -> None:
    with pytest.raises(CnosDBError) as info:
        lp.parse("m a=t 1\nm a_t 2", NOW)
    assert info.value.code == "040004"


@pytest.mark.parametrize("seed", range(30))
def test_single_lines_match_exact(seed: int) -> None:
    """A one-line request takes the line-by-line path (cheaper than `_mixed` for one line): the same rows."""
    rnd = random.Random(4000 + seed)
    text = request(rnd, 1, FIELD_KINDS)
    assert outcome(lambda t: lp.parse(t, NOW), text) == outcome(exact, text)
