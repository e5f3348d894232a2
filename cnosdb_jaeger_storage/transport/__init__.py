"""The wire transports: Jaeger storage gRPC v1 and v2, OTLP/gRPC, OTLP/HTTP and the Jaeger query HTTP API.

Each decodes a request, asks the storage API (storage/) and encodes the answer; none builds SQL or rows.
"""
