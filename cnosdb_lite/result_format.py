"""Result formatting and body (de)compression for cnosdb-lite's HTTP layer.

CnosDB 2.4.3 formats `/api/v1/sql` results with the arrow 42 writers (`main/src/http/result_format.rs`);
this module reproduces their text byte for byte where it matters to clients:

* CSV/TSV: arrow-csv 42 -- header row, then rows; timestamps as `%Y-%m-%dT%H:%M:%S.%9f`; floats in
  lexical-core notation (`2.0`, `1.0e10`); nulls as empty cells; minimal quoting.
* JSON / nd-json: arrow-json 42's row writer -- objects built in a serde_json map without
  `preserve_order`, so keys come out sorted; nulls are left out; timestamps are strings in chrono's
  Debug form (fraction of 0, 3, 6 or 9 digits); floats as serde_json (ryu) writes them.
* table: arrow's pretty printer (`+---+` borders).

Raises `CnosDBError` (with CnosDB's code) for unsupported `Accept` / `Accept-Encoding` /
`Content-Encoding` values.
"""

from __future__ import annotations

import csv
import datetime as _dt
import enum
import gzip
import io
import json
import math
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import zstandard

from .errors import CnosDBError

__all__ = [
    "ResultFormat",
    "choose_accept_encoding",
    "decode_body",
    "encode_body",
    "format_table",
    "parse_accept",
    "parse_content_encoding",
    "rust_f64_debug",
    "rust_f64_display",
]


def invalid_header(reason: str) -> CnosDBError:
    # InvalidHeader, code 040005, mapped to 400 (main/src/http/mod.rs).
    return CnosDBError(400, "040005", f"Invalid header: {reason}")


class ResultFormat(enum.Enum):
    CSV = "csv"
    TSV = "tsv"
    JSON = "json"
    ND_JSON = "nd-json"
    TABLE = "table"

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self]


_CONTENT_TYPES = {
    ResultFormat.CSV: "text/csv",
    ResultFormat.TSV: "text/tsv",
    ResultFormat.JSON: "application/json",
    ResultFormat.ND_JSON: "application/nd-json",
    ResultFormat.TABLE: "text/table",
}


def parse_accept(accept: str | None) -> ResultFormat:
    """Map an `Accept` header to a format exactly as `ResultFormat::try_from(&str)` does.

    No lists, no q-values, no trimming: anything but one bare token is a 400.
    """
    if accept is None or accept in ("", "application/*", "*/*"):
        return ResultFormat.CSV
    for prefix in ("application/", "text/"):
        if accept.startswith(prefix):
            name = accept[len(prefix):]
            for fmt in ResultFormat:
                if fmt.value == name.lower():
                    return fmt
            # The reason is wrapped twice upstream (get_result_format_from_header re-wraps it).
            raise invalid_header(f"Invalid header: invalid variant: {name}")
    raise invalid_header(f"Invalid header: accept type not support: {accept}")


# ---------------------------------------------------------------------------------------------------
# Compression. CnosDB knows exactly these tokens (common/http_protocol/src/encoding.rs), in this order.
ENCODINGS = ("gzip", "deflate", "br", "zstd", "snappy", "lz4", "identity")
# Tokens CnosDB accepts but cnosdb-lite has no codec for (no brotli/snappy/lz4 library is installed).
UNSUPPORTED_ENCODINGS = frozenset({"br", "snappy", "lz4"})


def choose_accept_encoding(header: str | None) -> str | None:
    """First token (split on `,`, trimmed) that exactly names an encoding wins; none matching is a 400."""
    if header is None:
        return None
    for token in (t.strip() for t in header.split(",")):
        if token in ENCODINGS:
            if token in UNSUPPORTED_ENCODINGS:
                raise invalid_header(f"accept encoding not supported by cnosdb-lite: {token}")
            return token
    raise invalid_header(f"accept encoding not support: {header}, only support: {', '.join(ENCODINGS)}")


def parse_content_encoding(header: str | None) -> str | None:
    if header is None:
        return None
    if header not in ENCODINGS:
        raise invalid_header(f"content encoding not support: {header}")
    if header in UNSUPPORTED_ENCODINGS:
        raise invalid_header(f"content encoding not supported by cnosdb-lite: {header}")
    return header


def encode_body(encoding: str | None, data: bytes) -> bytes:
    if encoding is None or encoding == "identity":
        return data
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        # flate2's DeflateEncoder writes raw DEFLATE (no zlib header), so do we.
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return compressor.compress(data) + compressor.flush()
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    raise invalid_header(f"accept encoding not supported by cnosdb-lite: {encoding}")


def decode_body(encoding: str | None, data: bytes) -> bytes:
    """Decode a request body; a corrupt body is DecodeRequest (400, 040013)."""
    if encoding is None or encoding == "identity":
        return data
    try:
        if encoding == "gzip":
            return gzip.decompress(data)
        if encoding == "deflate":
            decompressor = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
            out = decompressor.decompress(data) + decompressor.flush()
            if not decompressor.eof:
                raise zlib.error("unexpected end of deflate stream")
            return out
        if encoding == "zstd":
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
                return reader.read()
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise CnosDBError(400, "040013", f"Error decode request: {exc}") from exc
    raise invalid_header(f"content encoding not supported by cnosdb-lite: {encoding}")


# ---------------------------------------------------------------------------------------------------
# Float text. Python's repr gives the shortest round-tripping digits, as Rust's formatters do; only
# the layout differs between the Rust formatters reproduced here.


def _digits(x: float) -> tuple[str, int]:
    """Shortest digits of |x| (no leading/trailing zeros) and `point`: |x| = 0.DIGITS * 10**point."""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    raw = whole + frac
    stripped = raw.lstrip("0")
    point = len(whole) + (int(exp) if exp else 0) - (len(raw) - len(stripped))
    return stripped.rstrip("0"), point


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _sign(x: float) -> str:
    return "-" if math.copysign(1.0, x) < 0 else ""


def rust_f64_display(x: float) -> str:
    """Rust `f64::to_string()`: never an exponent, no `.0` for integral values (`72`, `1e20` → 21 digits)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return _sign(x) + "inf"
    if x == 0:
        return _sign(x) + "0"
    digits, point = _digits(x)
    return _sign(x) + _fixed(digits, point)


def rust_f64_debug(x: float) -> str:
    """Rust `{:?}` for f64: decimal with at least one fraction digit in [1e-4, 1e16), else `1e20` style."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return _sign(x) + "inf"
    if x == 0:
        return _sign(x) + "0.0"
    digits, point = _digits(x)
    if 1e-4 <= abs(x) < 1e16:
        text = _fixed(digits, point)
        return _sign(x) + (text if "." in text else text + ".0")
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{_sign(x)}{mantissa}e{point - 1}"


def _ryu(x: float) -> str:
    """serde_json's float text (ryu `format64`)."""
    if x == 0:
        return _sign(x) + "0.0"
    digits, kk = _digits(x)
    length = len(digits)
    if length <= kk <= 16:
        text = digits + "0" * (kk - length) + ".0"
    elif 0 < kk <= 16:
        text = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        text = "0." + "0" * -kk + digits
    elif length == 1:
        text = f"{digits}e{kk - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return _sign(x) + text


def _lexical(x: float) -> str:
    """lexical-core's default float text, used by arrow's display (CSV, table)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return _sign(x) + "inf"
    if x == 0:
        return _sign(x) + "0.0"
    digits, point = _digits(x)
    exponent = point - 1
    if exponent < -5 or exponent > 9:
        return f"{_sign(x)}{digits[0]}.{digits[1:] or '0'}e{exponent}"
    text = _fixed(digits, point)
    return _sign(x) + (text if "." in text else text + ".0")


# ---------------------------------------------------------------------------------------------------
# Timestamps.

_EPOCH = _dt.datetime(1970, 1, 1)
_UNIT_NANOS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _split_nanos(value: int, unit: str) -> tuple[_dt.datetime, int]:
    nanos = value * _UNIT_NANOS[unit]
    seconds, frac = divmod(nanos, 1_000_000_000)
    return _EPOCH + _dt.timedelta(seconds=seconds), frac


def _timestamp_csv(value: int, unit: str) -> str:
    moment, frac = _split_nanos(value, unit)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{frac:09d}"


def _timestamp_debug(value: int, unit: str) -> str:
    # chrono's NaiveDateTime Debug: the fraction shrinks to 3 or 6 digits, or vanishes, when it can.
    moment, frac = _split_nanos(value, unit)
    text = f"{moment:%Y-%m-%dT%H:%M:%S}"
    if frac == 0:
        return text
    if frac % 1_000_000 == 0:
        return f"{text}.{frac // 1_000_000:03d}"
    if frac % 1_000 == 0:
        return f"{text}.{frac // 1_000:06d}"
    return f"{text}.{frac:09d}"


def _temporal_cells(column: pa.ChunkedArray, render: Callable[[int, str], str]) -> list[str | None]:
    unit = column.type.unit
    return [None if v is None else render(v, unit) for v in column.cast(pa.int64()).to_pylist()]


# ---------------------------------------------------------------------------------------------------
# Cell rendering per format.


def _display(value: Any) -> str:
    """arrow's ArrayFormatter text for one non-temporal value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _lexical(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return "[" + ", ".join("" if v is None else _display(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {'' if v is None else _display(v)}" for k, v in value.items()) + "}"
    return str(value)


def _text_columns(table: pa.Table, csv_timestamps: bool) -> list[list[str | None]]:
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_timestamp(kind):
            columns.append(_temporal_cells(column, _timestamp_csv if csv_timestamps else _timestamp_debug))
        elif pa.types.is_date32(kind):
            columns.append([None if v is None else v.isoformat() for v in column.to_pylist()])
        else:
            columns.append([None if v is None else _display(v) for v in column.to_pylist()])
    return columns


def _json_value(value: Any) -> Any:
    if isinstance(value, float):
        # serde_json writes non-finite floats as null.
        return _RawFloat(value) if math.isfinite(value) else None
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, bytes):
        return value.hex()
    return value


class _RawFloat(float):
    """A float that the JSON encoder below writes in serde_json's notation."""


def _json_columns(table: pa.Table) -> list[list[Any]]:
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_timestamp(kind):
            columns.append(_temporal_cells(column, _timestamp_debug))
        elif pa.types.is_date32(kind):
            columns.append([None if v is None else v.isoformat() for v in column.to_pylist()])
        else:
            columns.append([None if v is None else _json_value(v) for v in column.to_pylist()])
    return columns


def _dump_json(value: Any) -> str:
    if isinstance(value, _RawFloat):
        return _ryu(value)
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_dump_json(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _json_rows(table: pa.Table) -> Iterable[str]:
    names = table.column_names
    columns = _json_columns(table)
    for row in range(table.num_rows):
        # serde_json's default Map is a BTreeMap: keys sorted, nulls never inserted.
        obj = {name: col[row] for name, col in zip(names, columns, strict=True) if col[row] is not None}
        yield _dump_json(obj)


def _delimited(table: pa.Table, delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.column_names)
    columns = _text_columns(table, csv_timestamps=True)
    for row in range(table.num_rows):
        writer.writerow(["" if col[row] is None else col[row] for col in columns])
    return out.getvalue().encode()


def _pretty(table: pa.Table) -> bytes:
    names = table.column_names
    columns = [[("" if v is None else v) for v in col] for col in _text_columns(table, csv_timestamps=False)]
    widths = [max([len(name)] + [len(v) for v in col]) for name, col in zip(names, columns, strict=True)]
    border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c.ljust(w)} " for c, w in zip(cells, widths, strict=True)) + "|"

    lines = [border, line(names), border]
    lines += [line([col[row] for col in columns]) for row in range(table.num_rows)]
    lines.append(border)
    return "\n".join(lines).encode()


def format_table(table: pa.Table, fmt: ResultFormat) -> bytes:
    """Render a query result. A result without rows still has its header in CSV/TSV/table; JSON
    and nd-json give an empty body then (arrow-json only writes `[`/`]` around a first row)."""
    if fmt is ResultFormat.CSV:
        return _delimited(table, ",")
    if fmt is ResultFormat.TSV:
        return _delimited(table, "\t")
    if fmt is ResultFormat.TABLE:
        return _pretty(table)
    rows = list(_json_rows(table))
    if not rows:
        return b""
    if fmt is ResultFormat.JSON:
        return ("[" + ",".join(rows) + "]").encode()
    return "".join(row + "\n" for row in rows).encode()
