"""Shared test helpers."""

from __future__ import annotations

import os

# cnosdb-lite answers as a real CnosDB does, its defects included (docs/cnosdb-lite.md, quirks mode), in this
# process and in every cnosdb-lite process a test starts: the server's SQL must be right on CnosDB itself.
os.environ["CNOSDB_LITE_QUIRKS"] = "1"


def sort_key_values(repeated) -> None:
    """In key order (ties by value): neither Jaeger nor OTLP gives tag or attribute order a meaning."""
    ordered = sorted(repeated, key=lambda kv: (kv.key, kv.SerializeToString(deterministic=True)))
    del repeated[:]
    repeated.extend(ordered)


def canonical_jaeger_span(span):
    """A copy with tags, process tags and log fields sorted and no process ID: Jaeger's own comparison."""
    from cnosdb_jaeger_storage.proto import model_pb2

    copy = model_pb2.Span()
    copy.CopyFrom(span)
    copy.process_id = ""
    for repeated in (copy.tags, copy.process.tags, *(log.fields for log in copy.logs)):
        sort_key_values(repeated)
    return copy
