SELECT "name" AS name, "kind" AS kind FROM "jaeger_spans_operations" WHERE "service" = 'it''s\''hostile\\' GROUP BY "name", "kind" ORDER BY "name", "kind"
