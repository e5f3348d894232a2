"""Over HTTP: CnosDB v2.4.3's measured answers, SHOW TAG VALUES, quirks mode and the scan header."""

from __future__ import annotations

import json

import pytest

from cnosdb_lite.scan import HEADER

from .lite_client import BackgroundServer, Client, basic


def error(reply) -> tuple[int, str, str]:
    body = json.loads(reply.body)
    return reply.status, body["error_code"], body["error_message"]


@pytest.fixture(scope="module")
def jaeger(plain_server: BackgroundServer) -> Client:
    client = plain_server.client
    client.ok_sql("CREATE DATABASE jaeger")
    assert client.write("t,k=a f=1 1", db="jaeger").status == 200
    return client


@pytest.mark.parametrize(("sql", "db", "expected"), [
    ("SELECT * FROM no_such_table", "jaeger", (422, "030019", 'Table not found: "cnosdb.jaeger.no_such_table"')),
    ("DESCRIBE TABLE no_such_table", "jaeger", (422, "030019", 'Table not found: "cnosdb.jaeger.no_such_table"')),
    ("SELECT * FROM t", "nodb", (422, "030019", 'Table not found: "cnosdb.nodb.t"')),
    ("SELEC", "jaeger", (422, "010009", "sql parser error: Expected an SQL statement, found: SELEC")),
])
def test_errors(jaeger: Client, sql: str, db: str, expected: tuple) -> None:
    assert error(jaeger.sql(sql, db=db)) == expected


def test_missing_database_answers(jaeger: Client) -> None:
    reply = jaeger.sql("SHOW TABLES", db="nodb")
    assert (reply.status, reply.body) == (200, b"")
    reply = jaeger.sql("SELECT 1", db="nodb")
    assert reply.status == 200 and json.loads(reply.body) == [{"Int64(1)": 1}]


def test_auth_answers(jaeger: Client) -> None:
    reply = jaeger.request("POST", "/api/v1/sql?db=public&tenant=notenant", "SELECT 1")
    assert error(reply) == (422, "010016", "Auth error: The tenant notenant not found")
    reply = jaeger.request("POST", "/api/v1/sql?db=public", "SELECT 1", auth=basic("nouser"))
    assert error(reply) == (422, "010016", "Auth error: The user nouser not found")
    reply = jaeger.request("POST", "/api/v1/sql?db=public", "SELECT 1", auth=None)
    assert error(reply) == (400, "000000", 'Missing request header "authorization"')


def test_count_star_column_name(jaeger: Client) -> None:
    reply = jaeger.ok_sql("SELECT count(*) FROM t", db="jaeger", accept="text/csv")
    assert reply.text == "COUNT(UInt8(1))\n1\n"
    reply = jaeger.ok_sql("SELECT count(*) AS n FROM t", db="jaeger", accept="text/csv")
    assert reply.text == "n\n1\n"


def test_show_tag_values(jaeger: Client) -> None:
    reply = jaeger.ok_sql('SHOW TAG VALUES FROM t WITH KEY = "k"', db="jaeger")
    assert json.loads(reply.body) == [{"key": "k", "value": "a"}]
    assert error(jaeger.sql("SHOW TAG VALUES FROM t WITH KEY = k WHERE f = 1", db="jaeger")) == (
        422, "010046", "Semantic error: SHOW SERIES does not support where clause contains field f")


def test_no_scan_header_without_accounting(jaeger: Client) -> None:
    assert HEADER not in jaeger.ok_sql("SELECT * FROM t", db="jaeger").headers


def test_quirks_and_scan_header(quirky_server: BackgroundServer) -> None:
    client = quirky_server.client
    db = client.new_database()
    for line in ["t2,tg=a g=1 1000", "t2,tg=b g=2 2000", 't2,tg=c f="PUT",g=3 3000', 't2,tg=d f="GET",g=4 4000']:
        assert client.write(line, db=db).status == 200
    reply = client.ok_sql("SELECT tg FROM t2 WHERE f = 'GET' ORDER BY tg", db=db)
    assert [r["tg"] for r in json.loads(reply.body)] == ["a", "b", "d"]
    assert json.loads(reply.headers[HEADER]) == [
        {"table": "t2", "index": False, "series": 4, "rows": 4, "index_only": False}]
    reply = client.ok_sql("SELECT * FROM t2 WHERE tg IN ('a', 'b')", db=db)
    assert [(s["index"], s["series"]) for s in json.loads(reply.headers[HEADER])] == [(True, 2)]
    assert list(json.loads(reply.body)[0]) == ["g", "tg", "time"]   # JSON keys sorted; no hidden column
    reply = client.ok_sql("SHOW TAG VALUES FROM t2 WITH KEY = tg WHERE tg = 'c'", db=db)
    assert json.loads(reply.headers[HEADER]) == [
        {"table": "t2", "index": True, "series": 1, "rows": 0, "index_only": True}]
    assert quirky_server.engine.last_scan.sql == "SHOW TAG VALUES FROM t2 WITH KEY = tg WHERE tg = 'c'"
