"""Jaeger remote storage (API v1 and v2) and OTLP receiver over CnosDB."""
