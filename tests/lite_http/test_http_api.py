"""Routes, statuses, auth, body limits and the write endpoint of cnosdb-lite."""

from __future__ import annotations

import json

import pytest

from cnosdb_lite.http_server import SQL_BODY_LIMIT, WRITE_BODY_LIMIT

from .lite_client import ROOT, basic

MISSING_AUTH = {"error_code": "000000", "error_message": 'Missing request header "authorization"'}


def error(reply) -> dict:
    assert reply.content_type == "application/json"
    return json.loads(reply.body)


# -- ping ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping_needs_no_auth(client, method):
    reply = client.request(method, "/api/v1/ping", auth=None)
    assert reply.status == 200
    assert reply.content_type == "application/json"
    if method == "GET":
        assert json.loads(reply.body) == {"version": "2.4.3", "status": "healthy"}
    else:
        assert reply.body == b""


# -- routing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/v1/ping", 405),
        ("GET", "/api/v1/sql", 405),
        ("PUT", "/api/v1/sql", 405),
        ("HEAD", "/api/v1/sql", 405),
        ("GET", "/api/v1/write", 405),
        ("GET", "/api/v1/traces", 405),
        ("GET", "/nowhere", 404),
        ("POST", "/api/v1/sql/", 404),
        ("POST", "/api/v1/opentsdb/write", 404),
        ("POST", "/api/v1/prom/write", 404),
    ],
    ids=lambda v: str(v),
)
def test_unknown_paths_and_wrong_methods_have_empty_bodies(client, method, path, status):
    reply = client.request(method, path, "select 1")
    assert reply.status == status
    assert reply.body == b""


# -- authentication --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/sql", "/api/v1/write", "/api/v1/traces"])
def test_missing_authorization_is_400_000000(client, path):
    reply = client.request("POST", path, "select 1", auth=None, headers={"table": "t"})
    assert reply.status == 400
    assert error(reply) == MISSING_AUTH


@pytest.mark.parametrize(
    "authorization",
    ["Bearer abc", "Basic", "Basic !!!notbase64", "basic " + ROOT[6:], "Basic " + "cm9vdA=="],
    ids=["bearer", "no-credentials", "bad-base64", "lowercase-scheme", "no-colon"],
)
@pytest.mark.parametrize("path", ["/api/v1/sql", "/api/v1/write"])
def test_malformed_authorization_is_400_040006(client, path, authorization):
    reply = client.request("POST", path, "select 1", auth=authorization)
    assert reply.status == 400
    assert error(reply) == {
        "error_code": "040006",
        "error_message": f"Parse auth, malformed basic auth encoding: {authorization}",
    }


@pytest.mark.parametrize(
    ("user", "password", "status"),
    [("root", "", 200), ("root", "anything", 200), ("bob", "", 422)],
    ids=["root", "root-any-password", "unknown-user"],
)
def test_without_auth_the_user_must_exist_but_password_is_ignored(client, user, password, status):
    reply = client.request("POST", "/api/v1/sql", "SHOW DATABASES", auth=basic(user, password))
    assert reply.status == status
    if status == 422:
        assert error(reply) == {"error_code": "010016", "error_message": "Auth error: The user bob not found"}


@pytest.mark.parametrize(
    ("user", "password", "ok"),
    [("alice", "s3cret", True), ("alice", "wrong", False), ("alice", "", False), ("root", "s3cret", False)],
    ids=["right", "wrong-password", "empty-password", "other-user"],
)
@pytest.mark.parametrize("path", ["/api/v1/sql", "/api/v1/write"])
def test_auth_enabled_checks_user_and_password(auth_client, path, user, password, ok):
    body = "SHOW DATABASES" if path.endswith("sql") else "auth_probe,t=a v=1 1"
    reply = auth_client.request("POST", path, body, auth=basic(user, password))
    if ok:
        assert reply.status == 200, reply.text
    else:
        assert reply.status == 422
        assert error(reply) == {
            "error_code": "010016",
            "error_message": f"Auth error: Access denied for user '{user}' "
            "(using xxx) username or password invalid",
        }


def test_auth_enabled_ping_is_still_open(auth_client):
    assert auth_client.request("GET", "/api/v1/ping", auth=None).status == 200


# -- body limits -----------------------------------------------------------------------------------------


def test_default_limits_are_cnosdbs():
    assert SQL_BODY_LIMIT == 16 * 1024 * 1024
    assert WRITE_BODY_LIMIT == 160 * 1024 * 1024


def test_sql_body_over_16_mib_is_413_before_auth(client):
    reply = client.request("POST", "/api/v1/sql", b"-" * (SQL_BODY_LIMIT + 1), auth=None)
    assert (reply.status, reply.body) == (413, b"")


def test_sql_body_of_exactly_the_limit_is_read(small_client):
    statement = "SELECT 1" + " " * (1024 - len("SELECT 1"))
    assert small_client.request("POST", "/api/v1/sql", statement).status == 200


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [
        ("/api/v1/sql", 1025, 413),
        ("/api/v1/write", 2049, 413),
        ("/api/v1/traces", 2049, 413),
        ("/api/v1/write", 1500, 422),  # under the write limit: parsed (and rejected) as line protocol
    ],
)
def test_configured_body_limits(small_client, path, size, status):
    reply = small_client.request("POST", path, b"x" * size, headers={"table": "t"})
    assert reply.status == status
    if status == 413:
        assert reply.body == b""


# -- /api/v1/sql parameters ------------------------------------------------------------------------------


def test_sql_tenant_and_db_come_from_query_and_unknown_params_are_ignored(client):
    db = client.new_database()
    assert client.write("m,t=a v=1 1", db=db).status == 200
    reply = client.request(
        "POST", f"/api/v1/sql?tenant=cnosdb&db={db}&pretty=true&whatever=1", "SELECT t, v FROM m",
        headers={"Accept": "application/json"},
    )
    assert reply.status == 200
    assert json.loads(reply.body) == [{"t": "a", "v": 1.0}]


def test_tenant_cnosdb_and_db_public_are_the_defaults(client):
    assert client.request("POST", "/api/v1/write", "defaults_probe,t=a v=7 1").status == 200
    explicit = client.request("POST", "/api/v1/sql?tenant=cnosdb&db=public", "SELECT t, v FROM defaults_probe",
                              headers={"Accept": "application/json"})
    implicit = client.request("POST", "/api/v1/sql", "SELECT t, v FROM defaults_probe",
                              headers={"Accept": "application/json"})
    assert json.loads(explicit.body) == json.loads(implicit.body) == [{"t": "a", "v": 7.0}]


def test_sql_engine_error_keeps_engine_status_and_code(client):
    reply = client.sql("SELECT * FROM table_that_does_not_exist")
    assert reply.status == 422
    body = error(reply)
    assert set(body) == {"error_code", "error_message"}
    assert len(body["error_code"]) == 6 and body["error_code"].isdigit()


def test_sql_body_is_decoded_lossily(client):
    reply = client.request("POST", "/api/v1/sql", b"SELECT '\xff' AS x", headers={"Accept": "application/json"})
    assert reply.status == 200, reply.text
    assert json.loads(reply.body) == [{"x": "\ufffd"}]


# -- /api/v1/write ---------------------------------------------------------------------------------------


def test_write_success_is_200_with_empty_body(client):
    db = client.new_database()
    reply = client.write("cpu,host=a usage=1.5 1690510331000000000", db=db)
    assert (reply.status, reply.body) == (200, b"")
    rows = json.loads(client.ok_sql("SELECT * FROM cpu", db=db).body)
    assert rows == [{"time": "2023-07-28T02:12:11", "host": "a", "usage": 1.5}]


@pytest.mark.parametrize(
    ("precision", "stored"),
    [
        ("ns", "2023-07-28T02:12:11"),
        ("NS", "2023-07-28T02:12:11"),
        ("us", "2023-07-28T02:12:11"),
        ("Ms", "2023-07-28T02:12:11"),
        ("s", None),  # not a CnosDB precision: silently ns
        ("bogus", None),
    ],
)
def test_write_precision(client, precision, stored):
    db = client.new_database()
    ts = {"ns": 1690510331000000000, "us": 1690510331000000, "ms": 1690510331000}.get(
        precision.lower(), 1690510331000000000
    )
    assert client.write(f"m,t=a v=1 {ts}", db=db, precision=precision).status == 200
    rows = json.loads(client.ok_sql("SELECT time FROM m", db=db).body)
    assert rows == [{"time": stored or "2023-07-28T02:12:11"}]


def test_write_invalid_utf8_is_422_040015(client):
    reply = client.request("POST", "/api/v1/write?db=public", b"m,t=\xff v=1 1")
    assert reply.status == 422
    assert error(reply) == {"error_code": "040015", "error_message": "Invalid utf-8 sequence: invalid utf-8 sequence"}


def test_write_parse_error_comes_from_engine(client):
    reply = client.write("m,t=a v=1 1\nbroken_line")
    assert reply.status == 422
    assert error(reply)["error_code"] == "040004"


def test_write_to_missing_database_is_an_engine_error(client):
    reply = client.write("m,t=a v=1 1", db="no_such_db")
    assert reply.status == 422
    assert "no_such_db" in error(reply)["error_message"]


def test_write_tenant_param_is_honoured(client):
    reply = client.request("POST", "/api/v1/write?tenant=no_such_tenant&db=public", "m,t=a v=1 1")
    assert reply.status == 422
    assert "no_such_tenant" in error(reply)["error_message"]
