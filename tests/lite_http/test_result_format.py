"""`/api/v1/sql` result formats (Accept) and the Rust number/time text they reproduce."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from cnosdb_lite.result_format import (
    ResultFormat,
    format_table,
    parse_accept,
    rust_f64_debug,
    rust_f64_display,
)

ROW_LINES = (
    "cpu,host=a,region=r1 usage=1.5,count=3i,ok=true,note=\"x,y\" 1690510331000000000\n"
    "cpu,host=b usage=2 1690510331123000000\n"
)


@pytest.fixture(scope="module")
def cpu_db(client):
    db = client.new_database()
    assert client.write(ROW_LINES, db=db).status == 200
    return db


QUERY = "SELECT time, host, region, usage, count, ok, note FROM cpu ORDER BY host"


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "text/csv"),
        ("", "text/csv"),
        ("*/*", "text/csv"),
        ("application/*", "text/csv"),
        ("text/csv", "text/csv"),
        ("application/csv", "text/csv"),
        ("text/tsv", "text/tsv"),
        ("application/json", "application/json"),
        ("text/JSON", "application/json"),
        ("application/nd-json", "application/nd-json"),
        ("application/ND-JSON", "application/nd-json"),
        ("text/table", "text/table"),
    ],
    ids=lambda v: repr(v),
)
def test_accept_selects_format(client, cpu_db, accept, content_type):
    headers = {} if accept is None else {"Accept": accept}
    reply = client.request("POST", f"/api/v1/sql?db={cpu_db}", QUERY, headers=headers)
    assert reply.status == 200
    assert reply.content_type == content_type


@pytest.mark.parametrize(
    ("accept", "message"),
    [
        ("*", "Invalid header: Invalid header: accept type not support: *"),
        ("application/json, text/plain", "Invalid header: Invalid header: invalid variant: json, text/plain"),
        ("application/json;q=0.9", "Invalid header: Invalid header: invalid variant: json;q=0.9"),
        ("application/x-ndjson", "Invalid header: Invalid header: invalid variant: x-ndjson"),
        ("text/plain", "Invalid header: Invalid header: invalid variant: plain"),
    ],
    ids=["star", "list", "q-value", "x-ndjson", "text-plain"],
)
def test_unsupported_accept_is_400_040005(client, accept, message):
    reply = client.request("POST", "/api/v1/sql", "SELECT 1", headers={"Accept": accept})
    assert reply.status == 400
    assert json.loads(reply.body) == {"error_code": "040005", "error_message": message}


def test_csv_rows(client, cpu_db):
    reply = client.ok_sql(QUERY, db=cpu_db, accept="text/csv")
    assert reply.text == (
        "time,host,region,usage,count,ok,note\n"
        '2023-07-28T02:12:11.000000000,a,r1,1.5,3,true,"x,y"\n'
        "2023-07-28T02:12:11.123000000,b,,2.0,,,\n"
    )


def test_tsv_rows(client, cpu_db):
    reply = client.ok_sql("SELECT time, host, usage FROM cpu ORDER BY host", db=cpu_db, accept="text/tsv")
    assert reply.text == (
        "time\thost\tusage\n"
        "2023-07-28T02:12:11.000000000\ta\t1.5\n"
        "2023-07-28T02:12:11.123000000\tb\t2.0\n"
    )


def test_json_omits_nulls_sorts_keys_and_renders_times_as_strings(client, cpu_db):
    reply = client.ok_sql(QUERY, db=cpu_db)
    assert reply.text == (
        '[{"count":3,"host":"a","note":"x,y","ok":true,"region":"r1","time":"2023-07-28T02:12:11",'
        '"usage":1.5},{"host":"b","time":"2023-07-28T02:12:11.123","usage":2.0}]'
    )


def test_nd_json_is_one_object_per_line(client, cpu_db):
    reply = client.ok_sql("SELECT host, usage FROM cpu ORDER BY host", db=cpu_db, accept="application/nd-json")
    assert reply.text == '{"host":"a","usage":1.5}\n{"host":"b","usage":2.0}\n'


def test_table_format(client, cpu_db):
    reply = client.ok_sql("SELECT host, usage FROM cpu ORDER BY host", db=cpu_db, accept="text/table")
    assert reply.text == (
        "+------+-------+\n"
        "| host | usage |\n"
        "+------+-------+\n"
        "| a    | 1.5   |\n"
        "| b    | 2.0   |\n"
        "+------+-------+"
    )


@pytest.mark.parametrize(
    ("accept", "body"),
    [
        ("text/csv", "host,usage\n"),
        ("text/tsv", "host\tusage\n"),
        ("application/json", ""),
        ("application/nd-json", ""),
    ],
)
def test_empty_result(client, cpu_db, accept, body):
    reply = client.ok_sql("SELECT host, usage FROM cpu WHERE host = 'nobody'", db=cpu_db, accept=accept)
    assert reply.text == body


def test_select_literal_csv_header_is_the_expression(client):
    # CnosDB answers `select 1` with "Int64(1)\n1\n".
    assert client.ok_sql("select 1", accept="text/csv").text == "Int64(1)\n1\n"


def test_ddl_answers_200_with_empty_body(client):
    reply = client.ok_sql("CREATE DATABASE IF NOT EXISTS ddl_probe")
    assert reply.body == b""


def test_json_key_order_is_sorted_not_select_order(client):
    assert client.ok_sql("SELECT 2 AS b, 1 AS a").text == '[{"a":1,"b":2}]'


# -- pure formatting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "display", "debug"),
    [
        (72.5, "72.5", "72.5"),
        (72.0, "72", "72.0"),
        (1e20, "100000000000000000000", "1e20"),
        (0.1, "0.1", "0.1"),
        (1e-7, "0.0000001", "1e-7"),
        (-0.0, "-0", "-0.0"),
        (1690510331123456789.0, "1690510331123456800", "1.6905103311234568e18"),
        (float("nan"), "NaN", "NaN"),
        (float("-inf"), "-inf", "-inf"),
    ],
    ids=lambda v: repr(v),
)
def test_rust_float_text(value, display, debug):
    assert rust_f64_display(value) == display
    assert rust_f64_debug(value) == debug


@pytest.mark.parametrize(
    ("value", "csv_text", "json_text"),
    [
        (2.0, "2.0", "2.0"),
        (1e9, "1000000000.0", "1000000000.0"),
        (1e10, "1.0e10", "10000000000.0"),
        (1e16, "1.0e16", "1e16"),
        (1.5e-5, "0.000015", "0.000015"),
        (1e-7, "1.0e-7", "1e-7"),
    ],
    ids=lambda v: repr(v),
)
def test_float_cells(value, csv_text, json_text):
    table = pa.table({"f": pa.array([value], pa.float64())})
    assert format_table(table, ResultFormat.CSV).decode() == f"f\n{csv_text}\n"
    assert format_table(table, ResultFormat.JSON).decode() == f'[{{"f":{json_text}}}]'


@pytest.mark.parametrize(
    ("nanos", "csv_text", "json_text"),
    [
        (0, "1970-01-01T00:00:00.000000000", "1970-01-01T00:00:00"),
        (1_500_000, "1970-01-01T00:00:00.001500000", "1970-01-01T00:00:00.001500"),
        (1, "1970-01-01T00:00:00.000000001", "1970-01-01T00:00:00.000000001"),
        (-1, "1969-12-31T23:59:59.999999999", "1969-12-31T23:59:59.999999999"),
    ],
)
def test_timestamp_cells(nanos, csv_text, json_text):
    table = pa.table({"time": pa.array([nanos], pa.timestamp("ns"))})
    assert format_table(table, ResultFormat.CSV).decode() == f"time\n{csv_text}\n"
    assert format_table(table, ResultFormat.JSON).decode() == f'[{{"time":"{json_text}"}}]'


def test_csv_quotes_only_when_needed():
    table = pa.table({"s": ["plain", "a,b", 'q"uote', "line\nbreak", ""]})
    assert format_table(table, ResultFormat.CSV).decode() == (
        's\nplain\n"a,b"\n"q""uote"\n"line\nbreak"\n""\n'
    )


def test_json_strings_are_escaped_but_not_ascii_only():
    table = pa.table({"s": ['é "q" \\ \n']})
    assert format_table(table, ResultFormat.JSON).decode() == '[{"s":"é \\"q\\" \\\\ \\n"}]'


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [(None, ResultFormat.CSV), ("text/Table", ResultFormat.TABLE), ("application/tsv", ResultFormat.TSV)],
)
def test_parse_accept(accept, fmt):
    assert parse_accept(accept) is fmt
