"""What the HTTP transports share: Basic auth, bounded request-body decompression, error statuses."""

from __future__ import annotations

import base64
import binascii
import hmac
import zlib

import zstandard
from aiohttp import web

from ..errors import StorageError


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_basic_auth(request: web.Request, user: str, password: str) -> None:
    """Raises 401 unless the request carries `user:password` (no-op when `user` is empty).

    Decoded here: aiohttp 3.14 deprecated its `BasicAuth` (gone in 4.0) and offers only an encoder instead."""
    if not user:
        return
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        given_user, _, given_password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        given_user, given_password = "", ""
    ok = scheme.lower() == "basic" and hmac.compare_digest(given_user, user) and hmac.compare_digest(
        given_password, password)
    if not ok:
        raise HttpError(401, "invalid or missing Basic credentials")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, decompressed per Content-Encoding, refused with 413 beyond `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(413, f"request body larger than {limit} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise HttpError(413, f"request body larger than {limit} bytes") from None
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    try:
        if encoding in ("", "identity"):
            body = raw
        elif encoding in ("gzip", "x-gzip"):
            body = _inflate(zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), raw, limit)
        elif encoding == "deflate":
            body = _inflate(zlib.decompressobj(), raw, limit)
        elif encoding == "zstd":
            body = _unzstd(raw, limit)
        else:
            raise HttpError(415, f"unsupported Content-Encoding {encoding!r}")
    except (zlib.error, zstandard.ZstdError) as exc:
        raise HttpError(400, f"body is not valid {encoding}: {exc}") from None
    if len(body) > limit:
        raise HttpError(413, f"decompressed request body larger than {limit} bytes")
    return body


def _inflate(decompressor: zlib._Decompress, raw: bytes, limit: int) -> bytes:
    body = decompressor.decompress(raw, limit + 1)
    if not decompressor.eof and len(body) <= limit:
        raise zlib.error("truncated stream")
    return body


def _unzstd(raw: bytes, limit: int) -> bytes:
    """Decompresses at most `limit` + 1 bytes (a zstd bomb must not fill memory), then checks that no
    frame was cut short, which zstd's bounded reader does not report."""
    body = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read(limit + 1)
    if len(body) <= limit:
        rest = raw
        while rest:  # the output is known to be small now: decompressing it again is cheap
            frame = zstandard.ZstdDecompressor().decompressobj()
            frame.decompress(rest)
            if not frame.eof:
                raise zstandard.ZstdError("truncated stream")
            rest = frame.unused_data
    return body


def status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, HttpError):
        return exc.status, str(exc)
    if isinstance(exc, StorageError):
        return exc.http_status, str(exc)
    return 500, f"internal error: {type(exc).__name__}"
