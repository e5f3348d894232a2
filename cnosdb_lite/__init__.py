"""cnosdb-lite: an embedded, CnosDB-compatible storage engine on Apache DataFusion.

`Engine` (engine.py) is the API; errors are `CnosDBError` (errors.py) with CnosDB's status, code and text.

SQL the plugin may rely on (the common subset of CnosDB's DataFusion 27 fork and DataFusion 55 here):
- SELECT with WHERE, AND/OR/NOT, comparison operators, IN lists, LIKE / NOT LIKE / ILIKE, IS [NOT] NULL,
  BETWEEN, GROUP BY, HAVING, ORDER BY, LIMIT/OFFSET, DISTINCT, UNION [ALL], sub-queries in FROM and IN,
  CTEs (WITH), CASE, CAST, COALESCE.
- Aggregates count/sum/min/max/avg and `array_agg`; scalar `regexp_replace`, `lower`, `upper`,
  `concat`, `substr`, `length`, `to_timestamp`, `now()`; the `~` regex operator is DataFusion's (not
  exercised by CnosDB's tests: prefer LIKE).
- Timestamp literals compare as `time >= '2024-01-01T00:00:00'` or `to_timestamp(<ns>)`; `time` is
  TIMESTAMP(NANOSECOND) without a time zone.
- Identifiers: unquoted names are lower-cased; quote anything else (`"ResourceSpans/ScopeSpans/Span/name"`).
- Not available in CnosDB (do not use): JSON functions, DataFusion-55-only functions (e.g. `array_*` beyond
  `array_agg`, `unnest`, `named_struct`), `QUALIFY`, window frames on GROUPS.
- CnosDB statements: CREATE/DROP/ALTER DATABASE, SHOW DATABASES/TABLES, DESCRIBE TABLE/DATABASE,
  CREATE TABLE ... TAGS(...), DROP TABLE, DELETE FROM t [WHERE tags/time], INSERT INTO t (...) VALUES.
Known differences from CnosDB: no `information_schema`, no tag-scan de-duplication when selecting only tags,
no ALTER TABLE, and DataFusion 55's error texts instead of DataFusion 27's.
"""


from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine
    from .errors import CnosDBError

__all__ = ["CnosDBError", "Engine"]


def __getattr__(name: str) -> Any:
    """`Engine` and `CnosDBError` on first use: importing the package (for `cnosdb_lite.clikit`, which the
    plugin's command shares) must not import pyarrow and DataFusion, the `embedded` extra."""
    if name == "Engine":
        from .engine import Engine
        return Engine
    if name == "CnosDBError":
        from .errors import CnosDBError
        return CnosDBError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
