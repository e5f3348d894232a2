"""Line protocol parsing: values, escapes, comments, errors (CnosDB's parser semantics)."""

from __future__ import annotations

import pytest

from cnosdb_lite import CnosDBError
from cnosdb_lite.line_protocol import parse

NOW = 1_700_000_000_000_000_000


def rows(text: str) -> dict[str, list[dict]]:
    return {t: lp.data.to_pylist() for t, lp in parse(text, NOW).items()}


@pytest.mark.parametrize(("text", "table", "expected"), [
    ("m f=2 1", "m", {"time": 1, "f": 2.0}),
    ("m f=2i 1", "m", {"time": 1, "f": 2}),
    ("m f=2u 1", "m", {"time": 1, "f": 2}),
    ("m f=-1.5e3 1", "m", {"time": 1, "f": -1500.0}),
    ("m a=t,b=TRUE,c=f,d=False 1", "m", {"time": 1, "a": True, "b": True, "c": False, "d": False}),
    ('m s="hello, world" 1', "m", {"time": 1, "s": "hello, world"}),
    ('m s="" 1', "m", {"time": 1, "s": ""}),
    ("m f=1", "m", {"time": NOW, "f": 1.0}),
    ("m f=1 12x", "m", {"time": 12, "f": 1.0}),
    ("  m,t=x   f=1   7  ", "m", {"time": 7, "t": "x", "f": 1.0}),
    ("m,b=2,a=1,a=9 f=1,f=2 1", "m", {"time": 1, "a": "1", "b": "2", "f": 1.0}),
    ('m s="line1\nline2" 1', "m", {"time": 1, "s": "line1\nline2"}),
    ("m,t=中 f=\"白\" 1", "m", {"time": 1, "t": "中", "f": "白"}),
], ids=["bare-number-is-double", "i-suffix", "u-suffix", "exponent", "booleans", "string-with-comma",
        "empty-string", "missing-timestamp-is-now", "last-timestamp-integer-prefix", "extra-spaces",
        "sorted-dedup-first-wins",
        "raw-newline-in-string", "unicode"])
def test_values(text: str, table: str, expected: dict) -> None:
    assert rows(text)[table] == [expected]


@pytest.mark.parametrize(("text", "expected"), [
    ("m,t=a\\ b f=1 1", {"t": "a b"}),
    ("m,t=a\\,b f=1 1", {"t": "a,b"}),
    ("m,t=a\\=b f=1 1", {"t": "a=b"}),
    ("m,t=a\\\\b f=1 1", {"t": "a\\\\b"}),
    ('m,t=a\\"b f=1 1', {"t": 'a\\"b'}),
    ("m,t\\ k=v f=1 1", {"t k": "v"}),
    ('m s="a\\"b" 1', {"s": 'a"b'}),
    ('m s="a\\\\b" 1', {"s": "a\\b"}),
    ("m s=\"a\\'b\" 1", {"s": "a\\'b"}),
    ("m,t=GET\\ /api f=1,g=\"x\" 1", {"t": "GET /api", "g": "x"}),
], ids=["tag-space", "tag-comma", "tag-equals", "tag-backslash-verbatim", "tag-quote-verbatim", "key-space",
        "string-quote", "string-backslash", "string-single-quote-verbatim", "mixed"])
def test_escapes(text: str, expected: dict) -> None:
    (row,) = next(iter(rows(text).values()))
    assert {k: row[k] for k in expected} == expected


def test_measurement_escapes() -> None:
    assert list(rows("my\\ table\\,x f=1 1")) == ["my table,x"]


def test_comments_blank_lines_and_many_tables() -> None:
    out = rows("# comment\n\nm1 f=1 1\n   \n# another\nm2,t=a g=2i 2\nm1 f=3 3\n")
    assert out == {"m1": [{"time": 1, "f": 1.0}, {"time": 3, "f": 3.0}],
                   "m2": [{"time": 2, "t": "a", "g": 2}]}


def test_bulk_and_exact_paths_agree() -> None:
    plain = "\n".join(f'm,t=v{i} a={i}i,b={i}.5,c="s {i}",d=true {i}' for i in range(50))
    escaped = plain.replace("c=\"s ", "c=\"s\\\\ ")
    assert [r["a"] for r in rows(plain)["m"]] == list(range(50))
    assert rows(escaped)["m"][3]["c"] == "s\\ 3"


@pytest.mark.parametrize(("text", "message"), [
    ("m", "unexpect end line start at '0'"),
    ("m f=1\nm2 f=\"x", "unexpect end line start at '11'"),
    ("m f=abc", "invalid field value: 'abc'"),
    ("m f=.5", "invalid field value: '.5'"),
    ("m f=1x", "invalid field value: '1x'"),
    ("m f=tru", "invalid field value: 'tru'"),
    ("m f=1 12x\nm f=2", "fail to parse timestamp at 9"),
    ('m f="a\\n"', "unexpect token 'n' at 7"),
    ('m f="a\\ b"', "unexpect token ' ' at 7"),
    ("m\\=x f=1", "unexpect token '=' at 2"),
    ("m,t=a\\x f=1", "unexpect token 'x' at 6"),
    ("m,t=a\\ b=c f=1", "invalid line protocol syntax"),
    ("m,t=v", "unexpect end line start at '2'"),
], ids=["no-fields", "unterminated-string", "bad-value", "leading-dot", "bad-suffix", "bad-bool",
        "bad-timestamp", "string-newline-escape", "string-space-escape", "measurement-equals-escape",
        "tag-unknown-escape", "escape-beside-raw-equals", "tags-only"])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(CnosDBError) as info:
        parse(text, NOW)
    assert (info.value.status, info.value.code) == (422, "040004")
    assert info.value.message == f"Error parsing message: {message}"


def test_first_error_in_text_is_reported() -> None:
    with pytest.raises(CnosDBError) as info:
        parse("m f=1\nm f=bad\nm g=worse", NOW)
    assert info.value.message.endswith("'bad'")


@pytest.mark.parametrize("text", ["m f=1i\nm f=2", "m,f=x f=1", "m a=1i\nm,a=x g=1"],
                         ids=["two-field-types", "tag-and-field-one-line", "field-then-tag"])
def test_two_types_in_one_request(text: str) -> None:
    with pytest.raises(CnosDBError) as info:
        parse(text, NOW)
    assert (info.value.status, info.value.code) == (422, "050014")
