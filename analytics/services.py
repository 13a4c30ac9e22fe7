"""Daily figures per tenant (``TenantDailyStats``) from tracking and orders.

This is its own app because it reads both ``tenants`` (interactions) and
``orders`` (sales): ``analytics → orders → tenants``, never back. In
``tenants`` it would need orders, which already import tenants (a cycle).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from orders.models import Order
from tenants.models import Interaction, Tenant, TenantDailyStats

# Orders that brought money in. PENDING may still be released, CANCELLED never
# paid, REFUNDED gave it back.
REVENUE_STATUSES = (Order.Status.PAID, Order.Status.FULFILLED)
CHUNK = 500


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A day in the site's TIME_ZONE, as the aware half-open interval [start, end)."""
    tz = timezone.get_default_timezone()
    return datetime.combine(day, time.min, tzinfo=tz), datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def daily_stats_sync(*, tenant_id: int, day: date) -> TenantDailyStats | None:
    """Compute one tenant's figures for ``day`` and upsert its row (``INSERT … ON
    CONFLICT (tenant, date) DO UPDATE``): running it again, or at the same time,
    leaves one row with the latest figures. None when the tenant is gone.

    views / redirects: pixel hits and link clicks; unique_visitors: distinct
    visitor hashes over both; orders: orders placed that day, any status;
    revenue: the totals of those of them now PAID or FULFILLED.
    """
    if not Tenant.objects.filter(pk=tenant_id).exists():
        return None
    start, end = day_bounds(day)
    hits = Interaction.objects.filter(tenant_id=tenant_id, occurred_at__gte=start, occurred_at__lt=end).aggregate(
        views=Count("pk", filter=Q(kind=Interaction.Kind.VIEW)),
        redirects=Count("pk", filter=Q(kind=Interaction.Kind.REDIRECT)),
        unique_visitors=Count("visitor", distinct=True),
    )
    sales = Order.objects.filter(tenant_id=tenant_id, created_at__gte=start, created_at__lt=end).aggregate(
        orders=Count("pk"),
        revenue=Sum("total", filter=Q(status__in=REVENUE_STATUSES), default=Decimal("0.00")),
    )
    stats = TenantDailyStats(tenant_id=tenant_id, date=day, **hits, **sales)
    TenantDailyStats.objects.bulk_create(
        [stats],
        update_conflicts=True,
        unique_fields=["tenant", "date"],
        update_fields=["views", "unique_visitors", "redirects", "orders", "revenue", "updated_at"],
    )
    return stats


def approved_tenant_chunks(chunk_size: int = CHUNK) -> Iterator[list[int]]:
    """Ids of approved tenants, ``chunk_size`` at a time, walked by id (keyset
    pagination on the ``(status, id)`` index): each chunk is one index range
    scan, not an OFFSET that rereads every tenant before it."""
    last_id = 0
    while True:
        approved = Tenant.objects.filter(status=Tenant.Status.APPROVED, pk__gt=last_id).order_by("pk")
        ids = list(approved.values_list("pk", flat=True)[:chunk_size])
        if not ids:
            return
        yield ids
        last_id = ids[-1]


def daily_stats_dispatch(*, day: date, chunk_size: int = CHUNK) -> int:
    """SyncAnalyticsJob's fan-out: one SyncTenantAnalytics per approved tenant, one
    bulk dispatch (two Redis round trips) per chunk of tenants. Returns the jobs
    accepted; a tenant-day whose job is still queued or running is a duplicate."""
    from analytics.jobs import sync_tenant_analytics

    accepted = 0
    for ids in approved_tenant_chunks(chunk_size):
        dispatched = sync_tenant_analytics.dispatch_many([(pk, day.isoformat()) for pk in ids])
        accepted += sum(d.accepted for d in dispatched)
    return accepted


def daily_stats_backfill(*, first: date, last: date, tenant_id: int | None = None, inline: bool = False) -> int:
    """Figures for every day in ``[first, last]``: for every approved tenant, or
    one tenant (whatever its status). Queued as SyncTenantAnalytics jobs, or
    computed in this process with ``inline``. Returns the jobs accepted or the
    tenant-days computed. Idempotent: each tenant-day is an upsert."""
    from analytics.jobs import sync_tenant_analytics

    days = days_between(first, last)
    if not inline:
        if tenant_id is None:
            return sum(daily_stats_dispatch(day=day) for day in days)
        dispatched = sync_tenant_analytics.dispatch_many([(tenant_id, day.isoformat()) for day in days])
        return sum(d.accepted for d in dispatched)
    chunks = [[tenant_id]] if tenant_id is not None else approved_tenant_chunks()
    done = 0
    for ids in chunks:
        for pk in ids:
            for day in days:
                done += daily_stats_sync(tenant_id=pk, day=day) is not None
    return done
