SHOW TAG VALUES FROM "jaeger_spans" WITH KEY = "ResourceSpans/ScopeSpans/Span/kind_tag" WHERE "ResourceSpans/Resource/attributes/service.name" = 'frontend'
