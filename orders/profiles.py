"""AI business profiles (GenerateBusinessProfile / EnhanceTenantProfileJob).

Lives on the orders side because the input is the tenant's catalog (orders'
Product); the providers (tenants/ai.py) and the profile write
(tenants.services) stay in tenants, so imports point one way.
"""

from __future__ import annotations

import logging

from orders.models import Product
from outbox.routes import Event
from queueing.definitions import Exponential, job
from tenants.ai import ProfileInput, provider_from_settings
from tenants.models import Tenant
from tenants.services import business_profile_apply

log = logging.getLogger(__name__)

CATALOG_SAMPLE = 200  # enough words for keywords and a prompt; bounded for huge catalogs


def profile_input(tenant: Tenant) -> ProfileInput:
    products = Product.objects.filter(tenant=tenant).order_by("id").values_list("name", "description")
    return ProfileInput(
        tenant_name=tenant.name,
        category=tenant.category,
        products=[(name, description) for name, description in products[:CATALOG_SAMPLE]],
    )


@job(
    queue="default",
    timeout=180,
    tries=3,
    backoff=Exponential(base=30, cap=300),
    unique_for=3600,
    unique_key=lambda tenant_id: str(tenant_id),
    tenant_arg="tenant_id",
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
