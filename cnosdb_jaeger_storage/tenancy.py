"""Which CnosDB tenant, database and table a request's Jaeger tenant reads and writes.

Without `--tenants`, every request uses the configured target and the tenant header is ignored. With it,
the header is required and must name a listed tenant; each tenant has its own database (by default the
tenant's name, in the configured CnosDB tenant), so one tenant never sees another's spans.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import UnknownTenant
from .store import Target, TraceStore


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
                 make_store: Callable[[Target], TraceStore]) -> None:
        self.header = header.lower()
        self._default = default
        self._tenants = tenants
        self._make_store = make_store
        self._stores: dict[Target, TraceStore] = {}

    @property
    def default(self) -> Target:
        return self._default

    @property
    def targets(self) -> list[Target]:
        return list(self._tenants.values()) if self._tenants else [self._default]

    def store(self, tenant: str | None) -> TraceStore:
        """The store of a request's tenant (the header's value, or None when absent)."""
        if not self._tenants:
            target = self._default
        elif not tenant:
            raise UnknownTenant(f"missing tenant header {self.header!r}")
        elif tenant not in self._tenants:
            raise UnknownTenant(f"unknown tenant {tenant!r}")
        else:
            target = self._tenants[tenant]
        return self._store(target)

    def store_at(self, target: Target) -> TraceStore:
        """The store of an explicit target (CnosDB's own headers); with tenants, only a configured one."""
        if self._tenants and target not in self._tenants.values():
            raise UnknownTenant(f"{target.tenant}/{target.database}/{target.table} is not a configured tenant")
        return self._store(target)

    def _store(self, target: Target) -> TraceStore:
        store = self._stores.get(target)
        if store is None:
            store = self._stores[target] = self._make_store(target)
        return store

    def stores(self) -> list[TraceStore]:
        return list(self._stores.values())
