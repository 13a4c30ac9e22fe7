"""Writes on tenants."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

import outbox
from tenants.models import BusinessProfile, Tenant


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
