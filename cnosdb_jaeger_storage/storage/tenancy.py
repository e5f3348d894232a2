"""Which CnosDB tenant, database and table a request's Jaeger tenant reads and writes.

Without `--tenants`, every request uses the configured target and the tenant header is ignored. With it,
the header is required and must name a listed tenant; each tenant has its own database (by default the
tenant's name, in the configured CnosDB tenant), so one tenant never sees another's spans.

The HTTP APIs also take CnosDB's own `tenant`, `db` and `table` headers (what CnosDB's exporter script and
Grafana's CnosDB set-up send). With tenants they may only narrow: another table of the caller's database,
never another database or CnosDB tenant. Without tenants they may address any database that exists.
Either way each header-addressed table gets a writer of its own, so their number is bounded (`max_tables`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from ..errors import InvalidRequest, UnknownDatabase, UnknownTenant
from .store import Target, TraceStore

_MAX_TABLE_NAME = 128


@dataclass(frozen=True)
class CnosDBHeaders:
    """CnosDB's `tenant`, `db` and `table` request headers; empty when absent."""

    tenant: str = ""
    database: str = ""
    table: str = ""

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> CnosDBHeaders:
        return cls(headers.get("tenant", ""), headers.get("db", ""), headers.get("table", ""))

    def __bool__(self) -> bool:
        return bool(self.tenant or self.database or self.table)


def check_table_name(name: str) -> None:
    """A name CnosDB takes as a table: 1–128 characters, no `/` (CnosDB refuses it), no control character."""
    if not 0 < len(name) <= _MAX_TABLE_NAME or "/" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidRequest(f"table {name!r} is not a valid table name: 1-{_MAX_TABLE_NAME} characters, "
                             "no '/' and no control characters")


def parse_tenants(spec: str, default: Target) -> dict[str, Target]:
    """'acme, beta=cnosdb/beta_traces' → {tenant: Target}."""
    tenants: dict[str, Target] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, where = item.partition("=")
        tenant, _, database = where.rpartition("/")
        tenants[name.strip()] = Target(tenant.strip() or default.tenant, database.strip() or name.strip(),
                                       default.table)
    return tenants


class Tenancy:
    def __init__(self, default: Target, tenants: dict[str, Target], header: str,
                 make_store: Callable[[Target], TraceStore],
                 database_exists: Callable[[str, str], Awaitable[bool]], max_tables: int) -> None:
        self.header = header.lower()
        self._default = default
        self._tenants = tenants
        self._make_store = make_store
        self._database_exists = database_exists
        self._max_tables = max_tables
        self._stores: dict[Target, TraceStore] = {}
        self._addressed: set[Target] = set()  # targets reached only through CnosDB's headers

    @property
    def default(self) -> Target:
        return self._default

    @property
    def targets(self) -> list[Target]:
        return list(self._tenants.values()) if self._tenants else [self._default]

    def store(self, tenant: str | None) -> TraceStore:
        """The store of a request's tenant (the header's value, or None when absent)."""
        return self._store(self._target_of(tenant))

    async def store_addressed(self, tenant: str | None, cnosdb: CnosDBHeaders) -> TraceStore:
        """The store of a request's tenant, narrowed by CnosDB's headers (see the module docstring)."""
        base = self._target_of(tenant)
        if not cnosdb:
            return self._store(base)
        target = Target(cnosdb.tenant or base.tenant, cnosdb.database or base.database, cnosdb.table or base.table)
        if self._tenants and (target.tenant, target.database) != (base.tenant, base.database):
            raise UnknownTenant(f"the headers address {target.tenant}/{target.database}, outside the database "
                                f"{base.tenant}/{base.database} of tenant {tenant!r}")
        if target in self._stores:
            return self._stores[target]
        check_table_name(target.table)
        if len(self._addressed) >= self._max_tables:
            raise UnknownTenant(f"table {target.table!r} refused: already {self._max_tables} tables addressed by "
                                "headers (--max-tables)")
        known = {(t.tenant, t.database) for t in (*self._stores, *self.targets)}
        if (target.tenant, target.database) not in known and not await self._database_exists(target.tenant,
                                                                                               target.database):
            raise UnknownDatabase(f"no database {target.database!r} in CnosDB tenant {target.tenant!r}")
        self._addressed.add(target)
        return self._store(target)

    def configured_store(self, target: Target) -> TraceStore:
        """The store of one of `targets`."""
        if target not in self.targets:
            raise UnknownTenant(f"{target} is not a configured target")
        return self._store(target)

    def _target_of(self, tenant: str | None) -> Target:
        if not self._tenants:
            return self._default
        if not tenant:
            raise UnknownTenant(f"missing tenant header {self.header!r}")
        if tenant not in self._tenants:
            raise UnknownTenant(f"unknown tenant {tenant!r}")
        return self._tenants[tenant]

    def _store(self, target: Target) -> TraceStore:
        store = self._stores.get(target)
        if store is None:
            store = self._stores[target] = self._make_store(target)
        return store

    def stores(self) -> list[TraceStore]:
        return list(self._stores.values())
