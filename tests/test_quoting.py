"""quoting: SQL literals and identifiers, line-protocol escapes, the stored form of names."""

from __future__ import annotations

import itertools
import re

import datafusion
import pyarrow as pa
import pytest

from cnosdb_jaeger_storage.cnosdb.quoting import (
    lp_field_key,
    lp_field_string,
    lp_measurement,
    lp_tag_key,
    lp_tag_value,
    sql_identifier,
    sql_number,
    sql_string,
    sql_timestamp,
)
from cnosdb_jaeger_storage.errors import InvalidRequest, InvalidValue
from cnosdb_jaeger_storage.model.stored_names import decode_stored_name, stored_name

HOSTILE = {
    "empty": "",
    "plain": "frontend",
    "single-quote": "O'Brien",
    "double-quote": 'say "hi"',
    "sql-injection": "x' OR '1'='1'; DROP TABLE jaeger_spans; --",
    "backslash-start": "\\start",
    "backslash-middle": "a\\b",
    "backslash-end": "end\\",
    "backslash-only": "\\",
    "backslashes": "\\\\\\",
    "backslash-quote": "\\'\\\"",
    "backslash-before-escapable": "\\,\\ \\=\\n",
    "newline": "line1\nline2",
    "cr": "a\rb",
    "crlf-end": "text\r\n",
    "tab": "a\tb",
    "separators": "k=v, x=y z",
    "hash-start": "#not a comment",
    "unicode": "서비스 — ünïcødé 🚀",
    "escape-lookalikes": "\\'x\\\"y\\\\",
    "only-space": " ",
    "json": '{"a":[1,"b\\\\c"]}',
}
CASES = pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())


# --- SQL -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("", "''"),
    ("abc", "'abc'"),
    ("O'Brien", "'O''Brien'"),
    ("''", "''''''"),
    ('"', "'\"'"),
    ("a\\b", "'a\\b'"),
    ("new\nline", "'new\nline'"),
], ids=["empty", "plain", "quote", "two-quotes", "double-quote", "backslash", "newline"])
def test_sql_string(value, expected):
    assert sql_string(value) == expected


def test_sql_string_refuses_nul_as_the_clients_fault():
    with pytest.raises(InvalidValue, match="NUL") as error:
        sql_string("a\0b")
    assert isinstance(error.value, ValueError) and isinstance(error.value, InvalidRequest)


@pytest.mark.parametrize(("name", "expected"), [
    ("time", '"time"'),
    ("ResourceSpans/ScopeSpans/Span/name", '"ResourceSpans/ScopeSpans/Span/name"'),
    ('we"ird', '"we""ird"'),
    ("Upper", '"Upper"'),
], ids=["time", "column", "quote", "upper"])
def test_sql_identifier(name, expected):
    assert sql_identifier(name) == expected


@pytest.mark.parametrize("name", ["", "a\0b"], ids=["empty", "nul"])
def test_sql_identifier_refuses(name):
    with pytest.raises(ValueError):
        sql_identifier(name)


@pytest.fixture(scope="module")
def datafusion_ctx():
    ctx = datafusion.SessionContext()
    ctx.register_record_batches("t", [[pa.record_batch({"s": pa.array(list(HOSTILE.values()))})]])
    return ctx


@CASES
def test_sql_string_reads_back_in_datafusion(datafusion_ctx, value):
    found = datafusion_ctx.sql(f"SELECT count(*) AS n FROM t WHERE s = {sql_string(value)}").to_pydict()
    assert found["n"] == [list(HOSTILE.values()).count(value)]
    echoed = datafusion_ctx.sql(f"SELECT {sql_string(value)} AS v").to_pydict()["v"]
    assert echoed == [value]


@pytest.mark.parametrize("value", [v for v in HOSTILE.values() if v], ids=[k for k, v in HOSTILE.items() if v])
def test_sql_identifier_names_the_column_in_datafusion(value):
    ctx = datafusion.SessionContext()
    ctx.register_record_batches("t", [[pa.record_batch({value: pa.array([1])})]])
    assert ctx.sql(f"SELECT {sql_identifier(value)} AS v FROM t").to_pydict() == {"v": [1]}


@pytest.mark.parametrize(("ns", "expected"), [
    (0, "CAST('1970-01-01T00:00:00.000000000' AS TIMESTAMP)"),
    (1_700_000_000_123_456_789, "CAST('2023-11-14T22:13:20.123456789' AS TIMESTAMP)"),
    (-1, "CAST('1969-12-31T23:59:59.999999999' AS TIMESTAMP)"),
    (10**30, "CAST('2262-04-11T23:47:16.854775807' AS TIMESTAMP)"),
    (-(10**30), "CAST('1677-09-21T00:12:43.145224192' AS TIMESTAMP)"),
], ids=["epoch", "nanos", "before-epoch", "clamped-high", "clamped-low"])
def test_sql_timestamp_text(ns, expected):
    assert sql_timestamp(ns) == expected


@pytest.mark.parametrize("ns", [0, 1, -1, 1_700_000_000_123_456_789, 1_700_000_000_123_456_790, 2**63 - 1],
                         ids=["epoch", "one", "minus-one", "now", "now+1", "max"])
def test_sql_timestamp_compares_exactly_in_datafusion(ns):
    ctx = datafusion.SessionContext()
    times = pa.array([ns - 1, ns, ns + 1] if ns < 2**63 - 1 else [ns - 1, ns], pa.timestamp("ns"))
    ctx.register_record_batches("t", [[pa.record_batch({"time": times})]])
    sql = f"SELECT CAST(time AS BIGINT) AS n FROM t WHERE time = {sql_timestamp(ns)}"
    assert ctx.sql(sql).to_pydict() == {"n": [ns]}
    sql = f"SELECT count(*) AS c FROM t WHERE time >= {sql_timestamp(ns)}"
    assert ctx.sql(sql).to_pydict() == {"c": [len(times) - 1]}


@pytest.mark.parametrize(("x", "expected"), [(0, "0"), (-42, "-42"), (2.5, "2.5"), (1e20, "1e+20")],
                         ids=["zero", "negative", "float", "exponent"])
def test_sql_number(x, expected):
    assert sql_number(x) == expected


@pytest.mark.parametrize("x", [True, float("nan"), float("inf"), "1"], ids=["bool", "nan", "inf", "str"])
def test_sql_number_refuses(x):
    with pytest.raises((TypeError, ValueError)):
        sql_number(x)


# --- stored form -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "stored"), [
    ("plain", "plain"),
    ("a\\b", "a\\\\b"),
    ("end\\", "end\\\\"),
    ("l1\nl2", "l1\\'l2"),
    ("a\rb", 'a\\"b'),
    ("\\\n\r", "\\\\\\'\\\""),
    ("it's \"x\"", "it's \"x\""),
    ("k=v, x", "k=v, x"),
], ids=["plain", "backslash", "trailing-backslash", "newline", "cr", "all-three", "quotes-kept",
        "separators-kept"])
def test_stored_name(value, stored):
    assert stored_name(value) == stored
    assert decode_stored_name(stored) == value


@CASES
def test_stored_name_round_trip(value):
    stored = stored_name(value)
    assert "\n" not in stored and "\r" not in stored
    assert decode_stored_name(stored) == value


def test_stored_name_round_trip_exhaustive_short_strings():
    alphabet = ["\\", "\n", "\r", "'", '"', "a", ","]
    for size in range(5):
        for chars in itertools.product(alphabet, repeat=size):
            value = "".join(chars)
            assert decode_stored_name(stored_name(value)) == value


@pytest.mark.parametrize(("value", "stored"), [
    ("\0", "\\\\x00"),
    ("a\0b", "a\\\\x00b"),
    ("\x01\x1f\x7f", "\\\\x01\\\\x1f\\\\x7f"),
    ("esc\x1b[31m", "esc\\\\x1b[31m"),
    ("tab\tkept", "tab\tkept"),
    ("\\x00", "\\\\x5cx00"),
    ("\\x5c", "\\\\x5cx5c"),
    ("\\x41", "\\\\x41"),
    ("\\x1F", "\\\\x1F"),
    ("\\\0", "\\\\\\\\x00"),
], ids=["nul", "nul-inside", "controls", "ansi-escape", "tab", "literal-escape-text", "literal-backslash-escape",
        "literal-x41-unchanged", "uppercase-unchanged", "backslash-then-nul"])
def test_stored_name_of_control_characters(value, stored):
    assert stored_name(value) == stored
    assert decode_stored_name(stored) == value


def _stored_name_before_hex_escapes(value: str) -> str:
    return value.translate(str.maketrans({"\\": "\\\\", "\n": "\\'", "\r": '\\"'}))


def test_stored_names_without_control_characters_are_unchanged():
    """Names stored before the `\\\\xNN` escapes keep their stored form (no control character, no `\\xNN`)."""
    alphabet = ["\\", "\n", "\r", "\t", "'", '"', "x", "4", "1", " ", "é"]
    for size in range(5):
        for chars in itertools.product(alphabet, repeat=size):
            value = "".join(chars)
            if not re.search(r"\\x(0[0-8bcef]|1[0-9a-f]|5c|7f)", value):
                assert stored_name(value) == _stored_name_before_hex_escapes(value)


def test_stored_name_round_trip_exhaustive_with_control_characters():
    alphabet = ["\\", "\0", "\x1f", "\n", "x", "0", "5", "c", "'"]
    seen: dict[str, str] = {}
    for size in range(6):
        for chars in itertools.product(alphabet, repeat=size):
            value = "".join(chars)
            stored = stored_name(value)
            assert not any(ord(c) < 0x20 or c == "\x7f" for c in stored)
            assert decode_stored_name(stored) == value
            assert seen.setdefault(stored, value) == value
            raw = lp_tag_value(value) if value else ""
            assert _cnosdb_accepts_name(raw) and _cnosdb_unescape_name(raw) == stored


@pytest.mark.parametrize(("stored", "decoded"), [
    ("trailing\\", "trailing\\"),
    ("a\\nb", "a\\nb"),
    ("\\u00e9", "\\u00e9"),
], ids=["lone-trailing", "json-newline", "json-unicode"])
def test_decode_keeps_foreign_backslashes(stored, decoded):
    assert decode_stored_name(stored) == decoded


# --- line protocol ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("jaeger_spans", "jaeger_spans"),
    ("my spans", "my\\ spans"),
    ("a,b", "a\\,b"),
    ("Ünï", "Ünï"),
], ids=["plain", "space", "comma", "unicode"])
def test_lp_measurement(name, expected):
    assert lp_measurement(name) == expected


@pytest.mark.parametrize("name", ["", "#spans", " spans", "a\\b", "a=b", "a\nb", "a\rb"],
                         ids=["empty", "hash", "leading-space", "backslash", "equals", "newline", "cr"])
def test_lp_measurement_refuses(name):
    with pytest.raises(ValueError):
        lp_measurement(name)


@pytest.mark.parametrize(("value", "expected"), [
    ("GET /api", "GET\\ /api"),
    ("a,b=c", "a\\,b\\=c"),
    ("end\\", "end\\\\"),
    ("l1\nl2\r", "l1\\'l2\\\""),
    ("\\,", "\\\\\\,"),
    ("#x", "#x"),
    ("tab\there", "tab\there"),
    ('q"uote\'', 'q"uote\''),
], ids=["space", "comma-equals", "trailing-backslash", "newline-cr", "backslash-comma", "hash", "tab",
        "quotes"])
def test_lp_tag_value(value, expected):
    assert lp_tag_value(value) == expected
    assert lp_field_key(value) == expected


def test_lp_tag_key_refuses_empty():
    with pytest.raises(ValueError):
        lp_tag_key("")


@pytest.mark.parametrize(("value", "expected"), [
    ("", '""'),
    ("plain", '"plain"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("end\\", '"end\\\\"'),
    ('\\"', '"\\\\\\""'),
    ("multi\nline\r\n", '"multi\nline\r\n"'),
    ("a,b c=d", '"a,b c=d"'),
], ids=["empty", "plain", "quotes", "trailing-backslash", "backslash-quote", "newlines", "separators"])
def test_lp_field_string(value, expected):
    assert lp_field_string(value) == expected


def _cnosdb_unescape_name(raw: str) -> str:
    """CnosDB's `escape()`: drop the backslash before `,` space `=`, keep every other one."""
    out = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in ", =":
            i += 1
        out.append(raw[i])
        i += 1
    return "".join(out)


def _cnosdb_accepts_name(raw: str) -> bool:
    """CnosDB's tokenizer: after a backslash only `,` space `=` `\\` `"` `'`; no raw separator or newline."""
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            if i + 1 >= len(raw) or raw[i + 1] not in ", =\\\"'":
                return False
            i += 2
            continue
        if c in ", =\n":
            return False
        i += 1
    return True


@CASES
def test_lp_names_are_stored_as_stored_name(value):
    if not value:
        return
    raw = lp_tag_value(value)
    assert _cnosdb_accepts_name(raw)
    assert _cnosdb_unescape_name(raw) == stored_name(value)
    assert decode_stored_name(_cnosdb_unescape_name(raw)) == value


@CASES
def test_lp_field_string_unescapes_to_value(value):
    quoted = lp_field_string(value)
    inner = quoted[1:-1]
    out = []
    i = 0
    while i < len(inner):
        if inner[i] == "\\":
            assert inner[i + 1] in "\\\""
            i += 1
        else:
            assert inner[i] != '"'
        out.append(inner[i])
        i += 1
    assert "".join(out) == value
