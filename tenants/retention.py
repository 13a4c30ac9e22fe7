"""How the purge sees tenants: a slug names one, and a plan may keep a kind longer.

Registered with ``queueing.retention`` in ``TenantsConfig.ready()``; the
purge itself lives in queueing/retention/. docs/retention.md.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet

from queueing.retention import RetentionError, Tenancy, kinds
from tenants.models import Plan, Tenant


def resolve(slug: str) -> int:
    tenant_id = Tenant.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if tenant_id is None:
        raise RetentionError(f"unknown tenant {slug!r} (no tenant has that slug)")
    return int(tenant_id)


def overrides(kind: str) -> list[tuple[int, QuerySet[Model]]]:
    """Per number of days, the tenants whose plan keeps ``kind`` that long."""
    plans_by_days: dict[int, list[int]] = {}
    for plan_id, days in Plan.objects.values_list("pk", "retention_days"):
        if isinstance(days, dict) and kind in days:
            plans_by_days.setdefault(int(days[kind]), []).append(plan_id)
    return [
        (days, Tenant.objects.filter(plan_id__in=plan_ids).values("pk"))  # type: ignore[misc]
        for days, plan_ids in sorted(plans_by_days.items())
    ]


def validate_plan_retention(value: Any) -> None:
    """A plan's ``retention_days``: registered tenant-data kinds, whole days of at least 1."""
    if not isinstance(value, dict):
        raise ValidationError({"retention_days": 'a mapping of kind to days, e.g. {"interactions": 730}'})
    tenant_kinds = {kind.name for kind in kinds() if kind.tenant_field is not None}
    for name, days in value.items():
        if name not in tenant_kinds:
            raise ValidationError(
                {"retention_days": f"{name!r} is not a kind of tenant data; one of: {', '.join(sorted(tenant_kinds))}"}
            )
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise ValidationError({"retention_days": f"{name}: expected a whole number of days (1 or more)"})


TENANCY = Tenancy(resolve=resolve, overrides=overrides)
