SHOW TAG VALUES FROM "jaeger_spans_operations" WITH KEY = "service"
