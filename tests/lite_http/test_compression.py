"""Accept-Encoding on SQL responses and Content-Encoding on request bodies (facts 1.4)."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
import zstandard

from cnosdb_lite.result_format import decode_body, encode_body

CSV = "Int64(1)\n1\n"


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def inflate(data: bytes) -> bytes:
    return zlib.decompress(data, wbits=-zlib.MAX_WBITS)


def unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(data)


COMPRESS = {"gzip": gzip.compress, "deflate": raw_deflate, "zstd": zstandard.ZstdCompressor().compress}
DECOMPRESS = {"gzip": gzip.decompress, "deflate": inflate, "zstd": unzstd, "identity": lambda b: b}


@pytest.mark.parametrize(
    ("accept_encoding", "chosen"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("zstd", "zstd"),
        ("identity", "identity"),
        ("compress, zstd, gzip", "zstd"),
        (" gzip ,deflate", "gzip"),
        ("gzip;q=1.0, deflate", "deflate"),  # a token with a q-value is no match; the next one is
    ],
    ids=lambda v: repr(v),
)
def test_accept_encoding_first_exact_match_wins(client, accept_encoding, chosen):
    reply = client.sql("select 1", accept="text/csv", headers={"Accept-Encoding": accept_encoding})
    assert reply.status == 200
    assert reply.headers["Content-Encoding"] == chosen
    assert DECOMPRESS[chosen](reply.body).decode() == CSV


def test_no_accept_encoding_means_no_content_encoding(client):
    reply = client.sql("select 1", accept="text/csv")
    assert "Content-Encoding" not in reply.headers
    assert reply.text == CSV


@pytest.mark.parametrize(
    ("accept_encoding", "message"),
    [
        ("*", "Invalid header: accept encoding not support: *, only support: "
              "gzip, deflate, br, zstd, snappy, lz4, identity"),
        ("gzip;q=1.0", "Invalid header: accept encoding not support: gzip;q=1.0, only support: "
                       "gzip, deflate, br, zstd, snappy, lz4, identity"),
        ("GZIP", "Invalid header: accept encoding not support: GZIP, only support: "
                 "gzip, deflate, br, zstd, snappy, lz4, identity"),
        ("br, gzip", "Invalid header: accept encoding not supported by cnosdb-lite: br"),
        ("snappy", "Invalid header: accept encoding not supported by cnosdb-lite: snappy"),
        ("lz4", "Invalid header: accept encoding not supported by cnosdb-lite: lz4"),
    ],
    ids=["star", "q-value-only", "uppercase", "br", "snappy", "lz4"],
)
def test_unusable_accept_encoding_is_400(client, accept_encoding, message):
    reply = client.sql("select 1", headers={"Accept-Encoding": accept_encoding})
    assert reply.status == 400
    assert json.loads(reply.body) == {"error_code": "040005", "error_message": message}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_compressed_sql_body(client, encoding):
    reply = client.request(
        "POST", "/api/v1/sql", COMPRESS[encoding](b"select 1"),
        headers={"Content-Encoding": encoding, "Accept": "text/csv"},
    )
    assert reply.status == 200, reply.text
    assert reply.text == CSV


def test_identity_sql_body(client):
    reply = client.request("POST", "/api/v1/sql", b"select 1", headers={"Content-Encoding": "identity"})
    assert reply.text == CSV


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_compressed_write_body(client, encoding):
    db = client.new_database()
    reply = client.request(
        "POST", f"/api/v1/write?db={db}", COMPRESS[encoding](b"m,t=a v=1 1690510331000000000"),
        headers={"Content-Encoding": encoding},
    )
    assert (reply.status, reply.body) == (200, b"")
    assert json.loads(client.ok_sql("SELECT t, v FROM m", db=db).body) == [{"t": "a", "v": 1.0}]


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("compress", "Invalid header: content encoding not support: compress"),
        ("GZIP", "Invalid header: content encoding not support: GZIP"),
        ("gzip, zstd", "Invalid header: content encoding not support: gzip, zstd"),
        ("br", "Invalid header: content encoding not supported by cnosdb-lite: br"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/sql", "/api/v1/write"])
def test_unsupported_content_encoding_is_400(client, path, encoding, message):
    reply = client.request("POST", path, b"select 1", headers={"Content-Encoding": encoding})
    assert reply.status == 400
    assert json.loads(reply.body) == {"error_code": "040005", "error_message": message}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_corrupt_compressed_body_is_400_040013(client, encoding):
    reply = client.request("POST", "/api/v1/sql", b"definitely not compressed",
                           headers={"Content-Encoding": encoding})
    assert reply.status == 400
    body = json.loads(reply.body)
    assert body["error_code"] == "040013"
    assert body["error_message"].startswith("Error decode request: ")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "identity"])
def test_encode_decode_round_trip(encoding):
    data = b"time,v\n" * 1000
    assert decode_body(encoding, encode_body(encoding, data)) == data
    assert DECOMPRESS[encoding](encode_body(encoding, data)) == data
