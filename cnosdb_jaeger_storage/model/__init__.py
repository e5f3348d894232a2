"""The span model and its mappings: CnosDB span-table rows ⇄ OTLP ⇄ Jaeger, and the names both sides share
(span kind, status, Jaeger tags ↔ OTLP fields, attribute values as text, trace IDs).
"""
