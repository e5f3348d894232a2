DROP TABLE IF EXISTS "jaeger_spans"
