"""This project's own storage conformance data set: Jaeger v1 traces and search cases, written in code.

`make test` needs nothing outside the repository: these cases cover what Jaeger's storage integration fixtures
cover (search by service, operation, tags found in span tags, process tags or log fields, duration ranges,
time windows, `num_traces`; traces of several spans; references; GetTrace of every value type, logs, process
tags, flags, warnings), with values of our own. Jaeger's fixtures themselves are replayed by `make e2e`
(e2e/test_conformance_fixtures.py, docs/e2e.md).

- `TRACES`: the search data set, written together into one store; every trace has its own trace ID.
- `EXAMPLE`, `EXAMPLE_TRACE`: the trace written alone for GetServices / GetOperations (three services, one
  operation twice, span kinds "", "server", "client").
- `CASES`: search cases; each names the traces it must return, no more and no fewer. Most have a service of
  their own holding, besides the expected traces, near misses that must not be returned (`native_also`: the
  near misses that CnosDB's own trace writer makes match).

All times fall on yesterday (UTC), or around last midnight, as Jaeger's suite moves its fixtures.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from datetime import time as day_time

from google.protobuf import duration_pb2, timestamp_pb2

from cnosdb_jaeger_storage.proto import model_pb2 as M
from cnosdb_jaeger_storage.proto import storage_v1_pb2 as pb

MIDNIGHT = datetime.combine(datetime.now(UTC).date(), day_time(), UTC)  # the start of today, UTC
NOON = MIDNIGHT - timedelta(hours=10, minutes=52, seconds=48, microseconds=575_758)  # yesterday 13:07:11.424242

# The tags every tag search asks for (one of each searchable type) and the text Jaeger's query sends for them.
SEARCH_TAGS: dict[str, object] = {"cart.currency": "EUR", "cart.items": 7, "cart.total": 19.25, "cart.gift": True}
QUERY_TAGS = {"cart.currency": "EUR", "cart.items": "7", "cart.total": "19.25", "cart.gift": "true"}
BLOB = b"\x00\xc0\xff\xee\n"


def kv(key: str, value: object) -> M.KeyValue:
    """A typed Jaeger tag: str, bool, int, float or bytes."""
    if isinstance(value, bool):
        return M.KeyValue(key=key, v_type=M.BOOL, v_bool=value)
    if isinstance(value, int):
        return M.KeyValue(key=key, v_type=M.INT64, v_int64=value)
    if isinstance(value, float):
        return M.KeyValue(key=key, v_type=M.FLOAT64, v_float64=value)
    if isinstance(value, bytes):
        return M.KeyValue(key=key, v_type=M.BINARY, v_binary=value)
    return M.KeyValue(key=key, v_type=M.STRING, v_str=value)


def kvs(tags: dict[str, object]) -> list[M.KeyValue]:
    return [kv(k, v) for k, v in tags.items()]


def pick(*keys: str, blob: bool = False) -> dict[str, object]:
    """Some of the search tags (with the binary `cart.blob` beside them, when asked)."""
    picked = {k: SEARCH_TAGS[k] for k in keys}
    return {**picked, "cart.blob": BLOB} if blob else picked


ALL = tuple(SEARCH_TAGS)


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(at)
    return ts


def trace_id(n: int) -> bytes:
    return bytes.fromhex("c0ffee5e") + bytes(10) + n.to_bytes(2, "big")


def span_id(trace: int, n: int) -> bytes:
    return bytes.fromhex("5a") + bytes(3) + trace.to_bytes(2, "big") + n.to_bytes(2, "big")


def ref(kind: int, trace: int, span: int) -> M.SpanRef:
    return M.SpanRef(ref_type=kind, trace_id=trace_id(trace), span_id=span_id(trace, span))


def span(trace: int, n: int, service: str, operation: str = "", *, at: datetime = NOON, ns: int = 5_000,
         tags: dict[str, object] | None = None, process_tags: dict[str, object] | None = None,
         logs: list[dict[str, object]] | None = None, log_at: list[datetime] | None = None,
         refs: list[M.SpanRef] | None = None, flags: int = 0, warnings: list[str] | None = None) -> M.Span:
    """A span of trace `trace`; its logs are at the span's start unless `log_at` says otherwise."""
    logs = [{}, {}] if logs is None else logs
    times = log_at or [at] * len(logs)
    return M.Span(
        trace_id=trace_id(trace), span_id=span_id(trace, n), operation_name=operation,
        references=refs or [], flags=flags, start_time=stamp(at), duration=duration_pb2.Duration(nanos=ns),
        tags=kvs(tags or {}), logs=[M.Log(timestamp=stamp(t), fields=kvs(f)) for t, f in zip(times, logs, strict=True)],
        process=M.Process(service_name=service, tags=kvs(process_tags or {})), warnings=warnings or [])


def trace(*spans: M.Span) -> M.Trace:
    return M.Trace(spans=spans)


# -- the search data set ----------------------------------------------------------------------------------------

_MIN = timedelta(minutes=1)
TRACES: dict[str, M.Trace] = {
    # tags in one spot, and a near miss lacking one of them
    "span_tags": trace(span(1, 1, "sq-span-tags", "price-cart", ns=7_000, tags=pick(*ALL, blob=True), logs=[])),
    "span_tags_partial": trace(span(2, 1, "sq-span-tags", "price-cart", ns=7_000,
                                    tags=pick("cart.currency", "cart.items", "cart.total"), logs=[])),
    "log_tags": trace(span(3, 1, "sq-log-tags", "price-cart", logs=[pick(*ALL, blob=True), {}])),
    "process_tags": trace(span(4, 1, "sq-process-tags", "price-cart", process_tags=pick(*ALL, blob=True))),
    # tags in different spots: span, process, log
    "multi_spot_tags": trace(span(5, 1, "sq-multi-spot", "price-cart", tags=pick("cart.gift", "cart.total"),
                                  process_tags=pick("cart.currency"), logs=[pick("cart.items"), {}])),
    # one span on each side of midnight; the window holds only the later one, the whole trace comes back
    "midnight": trace(
        span(6, 1, "sq-midnight", "nightly-export", at=MIDNIGHT - 3 * _MIN),
        span(6, 2, "sq-midnight", "nightly-upload", at=MIDNIGHT + 4 * _MIN, refs=[ref(M.CHILD_OF, 6, 1)])),
    "midnight_early": trace(span(7, 1, "sq-midnight", "nightly-export", at=MIDNIGHT - 50 * _MIN)),
    # operation name
    "opname": trace(span(8, 1, "sq-opname", "reserve-seat")),
    "opname_other": trace(span(9, 1, "sq-opname", "release-seat")),
    # operation name + max duration: the matching trace has a slow span of another operation too
    "opname_maxdur": trace(
        span(10, 1, "sq-opname-maxdur", "reserve-seat", ns=1_500, logs=[],
             refs=[ref(M.CHILD_OF, 10, 2)]),
        span(10, 2, "sq-opname-maxdur", "checkout", at=NOON - timedelta(microseconds=3), ns=4_000)),
    "opname_maxdur_slow": trace(span(11, 1, "sq-opname-maxdur", "reserve-seat", ns=6_000)),
    # operation name + duration range
    "opname_dur": trace(span(12, 1, "sq-opname-dur", "reserve-seat", ns=5_000)),
    "opname_dur_slow": trace(span(13, 1, "sq-opname-dur", "reserve-seat", ns=9_000)),
    "opname_dur_other": trace(span(14, 1, "sq-opname-dur", "release-seat", ns=5_000)),
    # duration range, bounds excluded on both sides
    "dur": trace(span(15, 1, "sq-dur", "render", ns=5_000)),
    "dur_short": trace(span(16, 1, "sq-dur", "render", ns=4_000)),
    "dur_long": trace(span(17, 1, "sq-dur", "render", ns=6_000)),
    # max duration
    "maxdur": trace(span(18, 1, "sq-maxdur", "render", ns=900)),
    "maxdur_long": trace(span(19, 1, "sq-maxdur", "render", ns=1_100)),
    # no operation name, no tags, two empty logs
    "default": trace(span(20, 1, "sq-default", "", ns=100_000)),
    # tags + operation name; the matching span has references: its parent, a span of another trace, a follower
    "tags_opname": trace(span(21, 1, "sq-tags-opname", "reserve-seat", ns=2_000, tags=pick(*ALL, blob=True), logs=[],
                              refs=[ref(M.CHILD_OF, 21, 9), ref(M.CHILD_OF, 99, 3), ref(M.FOLLOWS_FROM, 99, 3)])),
    "tags_opname_other": trace(span(22, 1, "sq-tags-opname", "release-seat", ns=2_000, tags=pick(*ALL))),
    # tags + operation name + max duration
    "tags_opname_maxdur": trace(span(23, 1, "sq-tags-opname-maxdur", "reserve-seat", ns=1_000,
                                     tags={"seat.row": "F"}, process_tags=pick(*ALL, blob=True),
                                     logs=[{"seat.col": 12}, {"note": "window"}])),
    "tags_opname_maxdur_slow": trace(span(24, 1, "sq-tags-opname-maxdur", "reserve-seat", ns=3_000,
                                          process_tags=pick(*ALL))),
    # tags + operation name + duration range
    "tags_opname_dur": trace(span(25, 1, "sq-tags-opname-dur", "reserve-seat", logs=[pick(*ALL, blob=True), {}])),
    "tags_opname_dur_untagged": trace(span(26, 1, "sq-tags-opname-dur", "reserve-seat", logs=[pick("cart.items")])),
    # tags + duration range
    "tags_dur": trace(span(27, 1, "sq-tags-dur", "render", tags=pick(*ALL, blob=True))),
    "tags_dur_long": trace(span(28, 1, "sq-tags-dur", "render", ns=8_000, tags=pick(*ALL))),
    # tags + max duration
    "tags_maxdur": trace(span(29, 1, "sq-tags-maxdur", "", ns=1_000, process_tags=pick(*ALL, blob=True))),
    # multi-spot tags + operation name: the log fields are spread over two logs
    "multispot_opname": trace(span(30, 1, "sq-multispot-opname", "reserve-seat", tags=pick("cart.total"),
                                   process_tags=pick("cart.currency"),
                                   logs=[pick("cart.items"), pick("cart.gift")])),
    "multispot_opname_other": trace(span(31, 1, "sq-multispot-opname", "release-seat", tags=pick("cart.total"),
                                         process_tags=pick("cart.currency"),
                                         logs=[pick("cart.items"), pick("cart.gift")])),
    # multi-spot tags + operation name + max duration
    "multispot_opname_maxdur": trace(span(32, 1, "sq-multispot-opname-maxdur", "reserve-seat", ns=1_000,
                                          tags=pick("cart.currency"), process_tags=pick("cart.total"),
                                          logs=[pick("cart.items"), pick("cart.gift", blob=True)])),
    # multi-spot tags + operation name + duration range
    "multispot_opname_dur": trace(span(33, 1, "sq-multispot-opname-dur", "reserve-seat",
                                       tags=pick("cart.currency"), process_tags=pick("cart.gift", "cart.total"),
                                       logs=[pick("cart.items"), {"cart.blob": BLOB}])),
    # multi-spot tags + duration range; a near miss whose tags are on two different spans
    "multispot_dur": trace(span(34, 1, "sq-multispot-dur", "render", tags=pick("cart.items", "cart.gift"),
                                process_tags=pick("cart.total", blob=True), logs=[pick("cart.currency"), {}])),
    "multispot_dur_split": trace(
        span(35, 1, "sq-multispot-dur", "render", tags=pick("cart.items", "cart.gift")),
        span(35, 2, "sq-multispot-dur", "render", tags=pick("cart.total", "cart.currency"),
             refs=[ref(M.CHILD_OF, 35, 1)])),
    # multi-spot tags + max duration
    "multispot_maxdur": trace(span(36, 1, "sq-multispot-maxdur", "render", ns=1_000, tags=pick("cart.currency"),
                                   process_tags=pick("cart.gift", "cart.total"),
                                   logs=[pick("cart.items"), {"cart.blob": BLOB}])),
    # several traces of one service
    "multiple1": trace(span(37, 1, "sq-multiple", "", ns=100_000)),
    "multiple2": trace(span(38, 1, "sq-multiple", "", ns=100_000, at=NOON + _MIN)),
    "multiple3": trace(span(39, 1, "sq-multiple", "", ns=100_000, at=NOON + 2 * _MIN)),
    # num_traces: the newest traces first
    "limit_old": trace(span(40, 1, "sq-limit", "poll", at=NOON - 20 * _MIN)),
    "limit_mid": trace(span(41, 1, "sq-limit", "poll", at=NOON - 10 * _MIN)),
    "limit_new": trace(span(42, 1, "sq-limit", "poll", at=NOON)),
    # a time window that leaves a trace out
    "window_in": trace(span(43, 1, "sq-window", "poll", at=NOON - 30 * _MIN)),
    "window_out": trace(span(44, 1, "sq-window", "poll", at=NOON + 3 * timedelta(hours=1))),
    # tag values with characters of patterns (SQL LIKE, globs, regexes) are matched literally
    "literal_star": trace(span(45, 1, "sq-literal", "poll", tags={"cart.currency": "EU*"})),
    "literal_plain": trace(span(46, 1, "sq-literal", "poll", tags={"cart.currency": "EUR"})),
    "literal_percent": trace(span(47, 1, "sq-literal", "poll", tags={"cart.currency": "E%_R.?"})),
    # every value type, everywhere: a trace of three spans over two services
    "rich": trace(
        span(48, 1, "sq-rich", "POST /orders", ns=1_234_567, flags=1,
             tags={"span.kind": "server", "http.method": "POST", "http.status_code": 201, "retry.ratio": 0.125,
                   "cache.hit": False, "order.digest": b"\x01\x02\xfe\xff", "note": "quotes \" ' and \\ ünïcode",
                   "big.int": -(2**62), "zero": 0, "negative.float": -3.5e-7, "empty": ""},
             process_tags={"hostname": "rack-7", "cores": 16, "load": 0.75, "canary": True,
                           "build.id": b"\xde\xad"},
             logs=[{"event": "order.received", "size.bytes": 4096, "valid": True},
                   {"event": "order.priced", "price": 12.5, "sku": "X-1", "raw": b"\x00"}],
             log_at=[NOON + timedelta(microseconds=10), NOON + timedelta(microseconds=900)]),
        span(48, 2, "sq-rich", "INSERT orders", at=NOON + timedelta(microseconds=50), ns=600_000, flags=3,
             tags={"span.kind": "client", "db.rows": 1, "error": True},
             process_tags={"hostname": "rack-7", "cores": 16, "load": 0.75, "canary": True,
                           "build.id": b"\xde\xad"},
             logs=[{"event": "error", "message": "deadlock, retried"}],
             refs=[ref(M.CHILD_OF, 48, 1)], warnings=["clock skew adjusted", "second warning"]),
        span(48, 3, "sq-rich-db", "execute", at=NOON + timedelta(microseconds=80), ns=400_000, flags=2,
             tags={"span.kind": "server", "db.statement": "INSERT INTO orders VALUES ($1)"},
             process_tags={"hostname": "db-1"}, logs=[],
             refs=[ref(M.CHILD_OF, 48, 2), ref(M.FOLLOWS_FROM, 48, 1)])),
}

# -- GetServices / GetOperations ---------------------------------------------------------------------------------

EXAMPLE = "catalog"
EXAMPLE_TRACE = trace(
    span(60, 1, "catalog-api", "list-items", ns=100_000),
    span(60, 2, "catalog-db", "SELECT items", ns=100_000, tags={"span.kind": "server"}),
    span(60, 3, "catalog-cache", "list-items", ns=100_000),
    span(60, 4, "catalog-api", "GET /items", ns=100_000, tags={"span.kind": "server"}),
    span(60, 5, "catalog-api", "query-db", ns=100_000, tags={"span.kind": "client"}),
    span(60, 6, "catalog-api", "list-items", ns=50_000))
EXAMPLE_SERVICES = {"catalog-api", "catalog-db", "catalog-cache"}
# catalog-api's operations with their span kinds, and those of kind "server"
EXAMPLE_OPERATIONS = [("GET /items", "server"), ("list-items", ""), ("query-db", "client")]
EXAMPLE_SERVER_OPERATIONS = [("GET /items", "server")]

# -- the search cases --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SearchCase:
    caption: str
    service: str
    expected: tuple[str, ...]
    operation: str = ""
    tags: dict[str, str] | None = None
    start_min: datetime = NOON - timedelta(hours=1)
    start_max: datetime = NOON + timedelta(hours=1)
    duration_min_ns: int = 0
    duration_max_ns: int = 0
    num_traces: int = 1000
    # Traces that also match over rows written by CnosDB's own /api/v1/traces: its writer leaks a span's
    # attributes into the later spans of the same export (docs/schema.md), so tags split over two spans meet.
    native_also: tuple[str, ...] = ()

    def query(self) -> pb.TraceQueryParameters:
        return pb.TraceQueryParameters(
            service_name=self.service, operation_name=self.operation, tags=self.tags or {},
            start_time_min=stamp(self.start_min), start_time_max=stamp(self.start_max),
            duration_min=duration_pb2.Duration(nanos=self.duration_min_ns),
            duration_max=duration_pb2.Duration(nanos=self.duration_max_ns), num_traces=self.num_traces)


_TAGS = QUERY_TAGS
CASES: list[SearchCase] = [
    SearchCase("Tags in one spot - span tags", "sq-span-tags", ("span_tags",), tags=_TAGS),
    SearchCase("Tags in one spot - log fields", "sq-log-tags", ("log_tags",), tags=_TAGS),
    SearchCase("Tags in one spot - process tags", "sq-process-tags", ("process_tags",), tags=_TAGS),
    SearchCase("Tags in different spots", "sq-multi-spot", ("multi_spot_tags",), tags=_TAGS),
    SearchCase("Trace spans over midnight", "sq-midnight", ("midnight",),
               start_min=MIDNIGHT + _MIN, start_max=MIDNIGHT + 6 * _MIN),
    SearchCase("Operation name", "sq-opname", ("opname",), operation="reserve-seat"),
    SearchCase("Operation name + max duration", "sq-opname-maxdur", ("opname_maxdur",), operation="reserve-seat",
               duration_max_ns=2_000),
    SearchCase("Operation name + duration range", "sq-opname-dur", ("opname_dur",), operation="reserve-seat",
               duration_min_ns=4_500, duration_max_ns=5_500),
    SearchCase("Duration range", "sq-dur", ("dur",), duration_min_ns=4_500, duration_max_ns=5_500),
    SearchCase("Max duration", "sq-maxdur", ("maxdur",), duration_max_ns=1_000),
    SearchCase("Min duration", "sq-dur", ("dur", "dur_long"), duration_min_ns=4_500),
    SearchCase("Service only", "sq-default", ("default",)),
    SearchCase("Tags + operation name", "sq-tags-opname", ("tags_opname",), operation="reserve-seat", tags=_TAGS),
    SearchCase("Tags + operation name + max duration", "sq-tags-opname-maxdur", ("tags_opname_maxdur",),
               operation="reserve-seat", tags=_TAGS, duration_max_ns=2_000),
    SearchCase("Tags + operation name + duration range", "sq-tags-opname-dur", ("tags_opname_dur",),
               operation="reserve-seat", tags=_TAGS, duration_min_ns=4_500, duration_max_ns=5_500),
    SearchCase("Tags + duration range", "sq-tags-dur", ("tags_dur",), tags=_TAGS,
               duration_min_ns=4_500, duration_max_ns=5_500),
    SearchCase("Tags + max duration", "sq-tags-maxdur", ("tags_maxdur",), tags=_TAGS, duration_max_ns=1_000),
    SearchCase("Multi-spot tags + operation name", "sq-multispot-opname", ("multispot_opname",),
               operation="reserve-seat", tags=_TAGS),
    SearchCase("Multi-spot tags + operation name + max duration", "sq-multispot-opname-maxdur",
               ("multispot_opname_maxdur",), operation="reserve-seat", tags=_TAGS, duration_max_ns=2_000),
    SearchCase("Multi-spot tags + operation name + duration range", "sq-multispot-opname-dur",
               ("multispot_opname_dur",), operation="reserve-seat", tags=_TAGS,
               duration_min_ns=4_500, duration_max_ns=5_500),
    SearchCase("Multi-spot tags + duration range", "sq-multispot-dur", ("multispot_dur",), tags=_TAGS,
               duration_min_ns=4_500, duration_max_ns=5_500, native_also=("multispot_dur_split",)),
    SearchCase("Multi-spot tags + max duration", "sq-multispot-maxdur", ("multispot_maxdur",), tags=_TAGS,
               duration_max_ns=1_000),
    SearchCase("Multiple traces", "sq-multiple", ("multiple1", "multiple2", "multiple3")),
    SearchCase("num_traces 2 - the newest", "sq-limit", ("limit_mid", "limit_new"), num_traces=2),
    SearchCase("num_traces 1 - the newest", "sq-limit", ("limit_new",), num_traces=1),
    SearchCase("Time window", "sq-window", ("window_in",)),
    SearchCase("Unmatched tag value", "sq-span-tags", (), tags={**_TAGS, "cart.currency": "USD"}),
    SearchCase("Unknown service", "sq-nobody", ()),
    SearchCase("Tag value with a glob star is literal", "sq-literal", ("literal_star",),
               tags={"cart.currency": "EU*"}),
    SearchCase("Tag value with LIKE and regex characters is literal", "sq-literal", ("literal_percent",),
               tags={"cart.currency": "E%_R.?"}),
    SearchCase("Tag value prefix does not match", "sq-literal", (), tags={"cart.currency": "EU"}),
    SearchCase("Whole trace over two services", "sq-rich-db", ("rich",)),
    SearchCase("Typed tags of every spot in a rich trace", "sq-rich", ("rich",),
               tags={"http.status_code": "201", "canary": "true", "price": "12.5", "cache.hit": "false"}),
]
