"""AuditTenantLimits: each tenant's usage against its plan's limits, recorded as
``LimitAudit`` rows, and an e-mail to the owner once per month, resource and level
(90% reached: "warning"; past the limit: "over").

It reads tenants, orders and marketing, so it lives here, above all three:
``analytics → orders, marketing → tenants``, never back.

Set-based: one aggregate query per resource, grouped by tenant, for every tenant
audited at once; the per-tenant work is arithmetic. The only per-row work is
reading file sizes for storage (see ``storage_used``) and claiming/sending the
rare notices.

Usage, for the calendar month (UTC) of ``now``:
- products: all the tenant's products;
- orders: orders created this month;
- recipients: campaign deliveries of the tenant's campaigns sent this month;
- storage: bytes of product images plus sales-export files, as reported by
  ``default_storage.size`` (a missing file counts 0). No size is stored on the
  rows, so this stats each file of the audited tenants once per run: cheap on the
  local disk, one HEAD per file on object storage.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from analytics.models import LimitAudit, LimitNotice
from lib import mail
from marketing.models import CampaignDelivery
from orders.models import Order, Product, SalesExport
from tenants.models import Tenant

log = logging.getLogger(__name__)

WARNING_RATIO = 0.9
MB = 1024 * 1024
Resource = LimitAudit.Resource
Level = LimitAudit.Level


@dataclass
class AuditSummary:
    tenants: int = 0
    warnings: int = 0  # resources at 90–100% of the limit
    over: int = 0  # resources past the limit
    sent: int = 0  # notices e-mailed by this run
    failed: int = 0  # notices whose e-mail failed (claim released: the next run retries)
    audits: list[LimitAudit] = field(default_factory=list)


def month_bounds(now: datetime) -> tuple[date, datetime, datetime]:
    """The calendar month (UTC) holding ``now``: its first day and [start, end)."""
    day = now.astimezone(UTC).date().replace(day=1)
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return day, start, datetime.combine(following, time.min, tzinfo=UTC)


def level_for(*, used: int, limit: int) -> tuple[float | None, str]:
    """Reaching the limit exactly is a warning (nothing more fits); past it is over.
    A limit of 0 means the plan does not include the resource: any use is over."""
    if limit <= 0:
        return None, Level.OVER if used > 0 else Level.OK
    ratio = used / limit
    if used > limit:
        return ratio, Level.OVER
    return ratio, Level.WARNING if ratio >= WARNING_RATIO else Level.OK


def _file_size(name: str) -> int:
    try:
        return int(default_storage.size(name))
    except (OSError, NotImplementedError):  # deleted by hand, or a storage without size()
        return 0


def storage_used(tenant_ids: list[int]) -> dict[int, int]:
    """Bytes per tenant: product images and export files (two queries, then one
    size lookup per file)."""
    used: dict[int, int] = defaultdict(int)
    images = Product.objects.filter(tenant_id__in=tenant_ids).exclude(image="").values_list("tenant_id", "image")
    exports = SalesExport.objects.filter(tenant_id__in=tenant_ids).exclude(file="").values_list("tenant_id", "file")
    for tenant_id, name in [*images, *exports]:
        used[tenant_id] += _file_size(name)
    return used


def _counts(rows: Iterable[dict[str, int]], key: str) -> dict[int, int]:
    return {row[key]: row["n"] for row in rows}


def usage_for(*, tenant_ids: list[int], now: datetime) -> dict[int, dict[str, int]]:
    """Usage of every resource for each tenant: one grouped query per resource."""
    _, start, end = month_bounds(now)
    products = _counts(
        Product.objects.filter(tenant_id__in=tenant_ids).values("tenant_id").annotate(n=Count("id")), "tenant_id"
    )
    orders = _counts(
        Order.objects.filter(tenant_id__in=tenant_ids, created_at__gte=start, created_at__lt=end)
        .values("tenant_id")
        .annotate(n=Count("id")),
        "tenant_id",
    )
    recipients = _counts(
        CampaignDelivery.objects.filter(
            campaign__tenant_id__in=tenant_ids,
            status=CampaignDelivery.Status.SENT,
            sent_at__gte=start,
            sent_at__lt=end,
        )
        .values("campaign__tenant_id")
        .annotate(n=Count("id")),
        "campaign__tenant_id",
    )
    storage = storage_used(tenant_ids)
    return {
        tenant_id: {
            Resource.PRODUCTS: products.get(tenant_id, 0),
            Resource.ORDERS: orders.get(tenant_id, 0),
            Resource.RECIPIENTS: recipients.get(tenant_id, 0),
            Resource.STORAGE: storage.get(tenant_id, 0),
        }
        for tenant_id in tenant_ids
    }


def limits_of(tenant: Tenant) -> dict[str, int]:
    plan = tenant.plan
    return {
        Resource.PRODUCTS: plan.max_products,
        Resource.ORDERS: plan.max_orders_per_month,
        Resource.RECIPIENTS: plan.max_campaign_recipients_per_month,
        Resource.STORAGE: plan.max_storage_mb * MB,
    }


def limit_notice_message(*, tenant: Tenant, notice: LimitNotice) -> EmailMultiAlternatives:
    resource = LimitAudit.Resource(notice.resource)
    is_storage = resource == Resource.STORAGE
    context = {
        "tenant": tenant,
        "resource": resource.label,
        "over": notice.level == Level.OVER,
        "used": f"{notice.used / MB:.1f} MB" if is_storage else notice.used,
        "limit": f"{notice.limit / MB:.0f} MB" if is_storage else notice.limit,
        "percent": round(100 * notice.used / notice.limit) if notice.limit else None,
        "month": notice.period,
        "plan": tenant.plan,
    }
    state = "over your plan's limit" if notice.level == Level.OVER else "close to your plan's limit"
    message = EmailMultiAlternatives(
        subject=f"{tenant.name}: {resource.label.lower()} {state}",
        body=render_to_string("emails/limit_warning.txt", context),
        to=[tenant.owner_email],
    )
    message.attach_alternative(render_to_string("emails/limit_warning.html", context), "text/html")
    return message


def limit_notice_send(*, tenant: Tenant, resource: str, level: str, used: int, limit: int, period: date) -> bool | None:
    """Claim the (tenant, resource, month, level) notice, then e-mail it. True: sent;
    None: already claimed (sent before, or another run is sending it); False: the
    e-mail failed and the claim was released, so the next run tries again."""
    # The unique constraint makes the insert the claim: of two runs at once, one
    # creates the row and sends, the other finds it and does nothing.
    notice, created = LimitNotice.objects.get_or_create(
        tenant=tenant, resource=resource, period=period, level=level, defaults={"used": used, "limit": limit}
    )
    if not created:
        return None
    try:
        mail.send(limit_notice_message(tenant=tenant, notice=notice))  # one connection for the whole run
    except Exception:
        notice.delete()
        log.exception(
            "limit notice %s/%s for tenant %s not sent; claim released for the next run", resource, level, tenant.pk
        )
        return False
    return True


def limits_audit(
    *, tenant_id: int | None = None, now: datetime | None = None, notify: bool = True, record: bool = True
) -> AuditSummary:
    """Audit one tenant (whatever its status) or every approved tenant: record one
    ``LimitAudit`` per tenant and resource, and e-mail the owners of newly warned
    or over resources (``notify=False``: send nothing; ``record=False``: write nothing)."""
    now = now or timezone.now()
    period, _, _ = month_bounds(now)
    tenants_qs = Tenant.objects.select_related("plan").order_by("pk")
    if tenant_id is not None:
        tenants_qs = tenants_qs.filter(pk=tenant_id)
    else:
        tenants_qs = tenants_qs.filter(status=Tenant.Status.APPROVED)
    tenants = list(tenants_qs)
    summary = AuditSummary(tenants=len(tenants))
    if not tenants:
        return summary
    tenant_ids = [t.pk for t in tenants]
    usage = usage_for(tenant_ids=tenant_ids, now=now)
    # Notices already taken this month, read once, so only new crossings cost queries.
    noticed = set(
        LimitNotice.objects.filter(tenant_id__in=tenant_ids, period=period).values_list(
            "tenant_id", "resource", "level"
        )
    )
    due: list[tuple[Tenant, str, str, int, int]] = []
    for tenant in tenants:
        for resource, limit in limits_of(tenant).items():
            used = usage[tenant.pk][resource]
            ratio, level = level_for(used=used, limit=limit)
            summary.audits.append(
                LimitAudit(
                    tenant=tenant, resource=resource, used=used, limit=limit, ratio=ratio, level=level, audited_at=now
                )
            )
            if level == Level.OK:
                continue
            if level == Level.WARNING:
                summary.warnings += 1
            else:
                summary.over += 1
            # "Over" covers "warning": a tenant back under the limit is not warned after it.
            done = {(tenant.pk, resource, level), (tenant.pk, resource, Level.OVER)}
            if not done & noticed:
                due.append((tenant, resource, level, used, limit))
    if record:
        LimitAudit.objects.bulk_create(summary.audits, batch_size=2000)
    if notify:
        for tenant, resource, level, used, limit in due:
            result = limit_notice_send(
                tenant=tenant, resource=resource, level=level, used=used, limit=limit, period=period
            )
            if result is True:
                summary.sent += 1
            elif result is False:
                summary.failed += 1
    return summary
