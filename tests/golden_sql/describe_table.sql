DESCRIBE TABLE "jaeger_spans"
