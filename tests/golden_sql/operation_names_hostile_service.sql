SHOW TAG VALUES FROM "jaeger_spans" WITH KEY = "ResourceSpans/ScopeSpans/Span/name" WHERE "ResourceSpans/Resource/attributes/service.name" = 'it''s\''hostile\\'
