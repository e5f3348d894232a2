SHOW TAG VALUES FROM "jaeger_spans" WITH KEY = "ResourceSpans/Resource/attributes/service.name"
