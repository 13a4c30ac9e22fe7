"""Writes on tenants."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

import outbox
from tenants.models import BusinessProfile, Interaction, Plan, Tenant, TrackedLink


@transaction.atomic
def tenant_approve(*, tenant_id: int) -> bool:
    """pending → approved, once; publishes ``tenant.approved`` (AI profile generation hangs on it).

    Returns False when the tenant was not pending (approving twice does nothing).
    """
    now = timezone.now()
    changed = Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.PENDING).update(
        status=Tenant.Status.APPROVED, approved_at=now
    )
    if not changed:
        return False
    tenant = Tenant.objects.get(pk=tenant_id)
    BusinessProfile.objects.get_or_create(tenant=tenant)
    outbox.publish(
        "tenant.approved",
        {"tenant_id": tenant.pk, "slug": tenant.slug, "plan": tenant.plan.slug},
        aggregate=("tenant", tenant.pk),
        tenant=tenant.pk,
    )
    return True


def tenant_subscription_set(*, status: str, tenant_id: int | None = None, stripe_customer_id: str = "") -> int:
    """Record the state of a tenant's own subscription to the platform, found by
    its pk or else its Stripe customer id. Returns how many tenants matched (0 or 1)."""
    if tenant_id is not None:
        tenants = Tenant.objects.filter(pk=tenant_id)
    elif stripe_customer_id:
        tenants = Tenant.objects.filter(stripe_customer_id=stripe_customer_id)
    else:
        raise ValueError("a tenant id or a Stripe customer id is needed")
    return tenants.update(subscription_status=status)


def business_profile_apply(*, tenant_id: int, description: str, tags: list[str]) -> bool:
    """Store a generated description and tags on the tenant's profile.

    Returns False when the tenant no longer exists (a job for a deleted row is a no-op).
    """
    if not Tenant.objects.filter(pk=tenant_id).exists():
        return False
    BusinessProfile.objects.update_or_create(
        tenant_id=tenant_id,
        defaults={"description": description, "tags": tags, "ai_enhanced_at": timezone.now()},
    )
    return True


# The release checklist's tracking smoke test (analytics' tracking_smoke_test)
# uses a dedicated tenant and link, created on first use and reused after.
SMOKE_TENANT_SLUG = "smoke-test"
SMOKE_LINK_CODE = "smoke"
SMOKE_DESTINATION = "https://example.com/vito-smoke-test"  # IANA's reserved example domain: never a real site


class SmokeTenantTaken(ValueError):
    """The smoke test's slug is a real tenant's."""


@transaction.atomic
def tracking_smoke_link_ensure() -> TrackedLink:
    """The smoke-test tenant (approved, on a plan of its own with no real limits) and its link."""
    plan, _ = Plan.objects.get_or_create(
        slug=SMOKE_TENANT_SLUG,
        defaults={
            "name": "Smoke test (not for sale)",
            "max_products": 1_000_000,
            "max_orders_per_month": 1_000_000,
            "max_campaign_recipients_per_month": 1_000_000,
            "max_storage_mb": 1_000_000,
        },
    )
    tenant, _ = Tenant.objects.get_or_create(
        slug=SMOKE_TENANT_SLUG,
        defaults={
            "name": "Release smoke test",
            "plan": plan,
            "owner_email": "smoke-test@localhost",
            "status": Tenant.Status.APPROVED,
            "approved_at": timezone.now(),
        },
    )
    if tenant.plan_id != plan.pk:
        # Someone's real shop: never record smoke hits against it (or delete its rows).
        raise SmokeTenantTaken(
            f"the slug {SMOKE_TENANT_SLUG!r} belongs to a tenant that is not the smoke test's "
            f"(plan {tenant.plan.slug!r}); rename that tenant or run the test elsewhere"
        )
    link, _ = TrackedLink.objects.get_or_create(
        tenant=tenant, code=SMOKE_LINK_CODE, defaults={"destination": SMOKE_DESTINATION}
    )
    return link


def tracking_smoke_interactions_delete(*, tenant_id: int, campaign: str) -> int:
    """Remove what one smoke test recorded: proof of a release, not a visitor."""
    deleted, _ = Interaction.objects.filter(tenant_id=tenant_id, utm_campaign=campaign).delete()
    return deleted
