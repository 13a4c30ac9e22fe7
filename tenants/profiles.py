"""AI business profiles (GenerateBusinessProfile / EnhanceTenantProfileJob):
the job, the ``tenant.approved`` handler that starts it, and the catalog source
the prompt is built from.

The catalog is orders' (Product), above tenants: orders registers its reader
with :func:`register_catalog` from ``OrdersConfig.ready()``, so imports point
one way. The providers are in tenants/ai.py. docs/tenants.md."""

from __future__ import annotations

import logging
from collections.abc import Callable

from outbox.routes import Event
from queueing.definitions import Exponential, job
from tenants.ai import ProfileInput, provider_from_settings
from tenants.models import Tenant
from tenants.services import business_profile_apply

log = logging.getLogger(__name__)

CATALOG_SAMPLE = 200  # enough words for keywords and a prompt; bounded for huge catalogs

# (tenant id, at most this many) → [(product name, description)], oldest first.
CatalogSource = Callable[[int, int], list[tuple[str, str]]]
_catalog: list[CatalogSource] = []


def register_catalog(source: CatalogSource) -> None:
    """Where a tenant's products are read from (one source; registering again replaces it)."""
    _catalog[:] = [source]


def profile_input(tenant: Tenant) -> ProfileInput:
    products = _catalog[0](tenant.pk, CATALOG_SAMPLE) if _catalog else []
    return ProfileInput(tenant_name=tenant.name, category=tenant.category, products=products)


@job(
    queue="default",
    timeout=180,
    tries=3,
    backoff=Exponential(base=30, cap=300),
    unique_for=3600,
    unique_key=lambda tenant_id: str(tenant_id),
    tenant_arg="tenant_id",
    formerly=["orders.profiles.enhance_tenant_profile"],
)
def enhance_tenant_profile(tenant_id: int) -> str:
    """EnhanceTenantProfileJob: generate and apply a description and tags.

    Unique per tenant for an hour (a burst of triggers costs one provider
    call); a malformed provider answer is a PermanentError — straight to the
    failed-job ledger, profile untouched; an unreachable provider is retried.
    """
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "tenant gone"
    draft = provider_from_settings().generate(profile_input(tenant))
    business_profile_apply(tenant_id=tenant_id, description=draft.description, tags=draft.tags)
    log.info("profile of tenant %s enhanced by %s: %d tag(s)", tenant_id, draft.source, len(draft.tags))
    return draft.source


def handle_tenant_approved(event: Event) -> None:
    """GenerateBusinessProfile: outbox route for ``tenant.approved``."""
    enhance_tenant_profile.dispatch(int(event.payload["tenant_id"]))
