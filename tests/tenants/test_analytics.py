"""Daily analytics: SyncTenantAnalytics, SyncAnalyticsJob, the backfill command, the API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from redis import Redis
from rest_framework.authtoken.models import Token

from analytics.jobs import sync_analytics, sync_tenant_analytics, yesterday
from analytics.services import day_bounds
from queueing.dispatch import get_queue
from tenants import tracking
from tenants.models import Interaction, Plan, Tenant, TenantDailyStats, TenantMember
from tests.factories import OrderFactory, PlanFactory, TenantFactory, UserFactory
from tests.queueing.conftest import run_worker, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh(redis_conn: Redis) -> Iterator[Redis]:
    tracking.clear_caches()
    yield redis_conn
    tracking.clear_caches()


def _at(day: date, hour: int) -> datetime:
    return day_bounds(day)[0] + timedelta(hours=hour)


def _interactions(tenant: Tenant, day: date, hits: list[tuple[str, str]], batch: str = "") -> None:
    """(kind, visitor) pairs on ``day``, as the drain would have stored them."""
    Interaction.objects.bulk_create(
        Interaction(
            tenant=tenant,
            kind=kind,
            visitor=visitor,
            occurred_at=_at(day, n % 24),
            hit_id=f"{tenant.pk}-{day}-{batch}{n}",
        )
        for n, (kind, visitor) in enumerate(hits)
    )


def _orders(tenant: Tenant, day: date, totals: dict[str, str]) -> None:
    for n, (status, total) in enumerate(totals.items()):
        OrderFactory.create(tenant=tenant, status=status, total=Decimal(total), created_at=_at(day, n))


def test_sync_tenant_analytics_computes_the_day_and_is_idempotent() -> None:
    tenant, other = TenantFactory.create(), TenantFactory.create()
    day = date(2025, 3, 14)
    _interactions(
        tenant,
        day,
        [("view", "a"), ("view", "a"), ("view", "b"), ("view", "c"), ("redirect", "c"), ("redirect", "d")],
    )
    _interactions(tenant, day + timedelta(days=1), [("view", "e")])  # another day
    _interactions(other, day, [("view", "a")])  # another tenant
    _orders(tenant, day, {"PAID": "10.00", "FULFILLED": "5.50", "PENDING": "7.00", "CANCELLED": "3.00",
                          "REFUNDED": "2.00"})  # fmt: skip
    _orders(tenant, day - timedelta(days=1), {"PAID": "100.00"})
    _orders(other, day, {"PAID": "1000.00"})

    sync_tenant_analytics(tenant.pk, day.isoformat())
    first = TenantDailyStats.objects.get(tenant=tenant, date=day)
    expected = {"views": 4, "unique_visitors": 4, "redirects": 2, "orders": 5, "revenue": Decimal("15.50")}
    assert {k: getattr(first, k) for k in expected} == expected

    sync_tenant_analytics(tenant.pk, day.isoformat())  # again: the same one row
    again = TenantDailyStats.objects.get(tenant=tenant, date=day)
    assert again.pk == first.pk and {k: getattr(again, k) for k in expected} == expected
    assert TenantDailyStats.objects.count() == 1

    _interactions(tenant, day, [("view", "z")], batch="late")  # late data: a re-run updates the row
    sync_tenant_analytics(tenant.pk, day.isoformat())
    assert TenantDailyStats.objects.get(pk=first.pk).unique_visitors == 5


def test_a_deleted_tenant_is_a_no_op() -> None:
    assert sync_tenant_analytics(987654321, "2025-01-01") is None
    assert not TenantDailyStats.objects.exists()


def test_pixel_hits_to_daily_figures_end_to_end(client: Client) -> None:
    tenant = TenantFactory.create()
    for ip, ua in [("203.0.113.1", "A"), ("203.0.113.1", "A"), ("203.0.113.2", "A"), ("203.0.113.2", "B")]:
        client.get(f"/t/{tenant.slug}/pixel.gif", REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
    from analytics.jobs import record_interactions

    today = timezone.localdate()
    record_interactions.dispatch()
    sync_tenant_analytics.dispatch(tenant.pk, today.isoformat())  # queued behind the drain
    worker = run_worker("default", "--burst")
    assert worker.returncode == 0, worker.stderr
    stats = TenantDailyStats.objects.get(tenant=tenant, date=today)
    assert (stats.views, stats.unique_visitors, stats.redirects) == (4, 3, 0)


def _bulk_tenants(plan: Plan, count: int, status: str, prefix: str) -> list[int]:
    Tenant.objects.bulk_create(
        Tenant(slug=f"{prefix}-{n}", name=f"{prefix} {n}", plan=plan, owner_email="o@example.com", status=status)
        for n in range(count)
    )
    return list(Tenant.objects.filter(slug__startswith=f"{prefix}-").values_list("pk", flat=True))


def test_sync_analytics_queues_one_job_per_approved_tenant_once() -> None:
    plan = PlanFactory.create()
    approved = _bulk_tenants(plan, 1200, Tenant.Status.APPROVED, "ok")
    _bulk_tenants(plan, 40, Tenant.Status.PENDING, "wait")
    _bulk_tenants(plan, 10, Tenant.Status.SUSPENDED, "off")
    queue = get_queue("default")

    assert sync_analytics() == 1200  # no day: yesterday
    assert queue.count == 1200
    jobs = queue.get_jobs()
    assert {job.func_name for job in jobs} == {"analytics.jobs.sync_tenant_analytics"}
    assert sorted(job.args[0] for job in jobs) == sorted(approved)
    assert {job.args[1] for job in jobs} == {yesterday().isoformat()}

    # The same day again while those jobs wait: every one is a duplicate.
    assert sync_analytics(yesterday().isoformat()) == 0
    assert queue.count == 1200
    # Another day is another set.
    assert sync_analytics((yesterday() - timedelta(days=1)).isoformat()) == 1200
    assert queue.count == 2400


def test_sync_analytics_is_unique_per_day_and_runs_in_a_worker() -> None:
    plan = PlanFactory.create()
    _bulk_tenants(plan, 30, Tenant.Status.APPROVED, "ok")
    _bulk_tenants(plan, 5, Tenant.Status.PENDING, "wait")
    day = yesterday().isoformat()
    assert sync_analytics.dispatch().status == "queued"
    assert sync_analytics.dispatch(day).status == "duplicate"  # the schedule's run is yesterday's
    assert sync_analytics.dispatch("2020-01-01").status == "queued"
    worker = run_worker("default", "--burst")
    assert worker.returncode == 0, worker.stderr
    assert TenantDailyStats.objects.filter(date=yesterday()).count() == 30
    assert TenantDailyStats.objects.filter(date=date(2020, 1, 1)).count() == 30
    assert get_queue("default").count == 0


def test_the_backfill_command_covers_a_range() -> None:
    tenant = TenantFactory.create()
    other = TenantFactory.create()
    TenantFactory.create(status=Tenant.Status.PENDING)
    first = timezone.localdate() - timedelta(days=5)
    for n in range(3):
        _orders(tenant, first + timedelta(days=n), {"PAID": f"{n + 1}.00"})

    call_command("analytics_sync", "--from", str(first), "--to", str(first + timedelta(days=2)),
                 "--tenant", tenant.slug, "--inline")  # fmt: skip
    rows = TenantDailyStats.objects.filter(tenant=tenant).order_by("date")
    assert [(r.date, r.orders, r.revenue) for r in rows] == [
        (first + timedelta(days=n), 1, Decimal(f"{n + 1}.00")) for n in range(3)
    ]

    # Queued for every approved tenant: 2 tenants × 4 days, then a worker runs them.
    call_command("analytics_sync", "--from", str(first), "--to", str(first + timedelta(days=3)))
    assert get_queue("default").count == 8
    assert run_worker("default", "--burst").returncode == 0
    assert TenantDailyStats.objects.filter(tenant=other).count() == 4
    assert TenantDailyStats.objects.filter(tenant=tenant).count() == 4
    assert TenantDailyStats.objects.count() == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-02-30"], "is not a date"),
        (["--from", "2025-03-10", "--to", "2025-03-01"], "is after --to"),
        (["--from", "2025-03-01", "--to", "2999-01-01"], "in the future"),
        (["--from", "2025-03-01", "--tenant", "nobody"], "no tenant with slug"),
        (["--from", "2019-01-01", "--to", "2025-01-01"], "at most"),
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message) as raised:
        call_command("analytics_sync", *args)
    assert raised.value.returncode == 2
    assert get_queue("default").count == 0


def test_bad_arguments_exit_2_from_the_shell() -> None:
    for args in (["--from", "2025-03-10", "--to", "2025-03-01"], ["--to", "2025-03-01"]):
        done = subprocess.run(
            [sys.executable, "manage.py", "analytics_sync", *args],
            env=worker_env(),
            cwd=django_settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert "--from" in done.stderr


def _member(tenant: Tenant) -> Client:
    user = UserFactory.create()
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    return Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})


def test_the_api_returns_only_the_requesting_tenants_rows(settings: Any) -> None:
    mine, theirs = TenantFactory.create(), TenantFactory.create()
    day = date(2025, 5, 1)
    for n in range(3):
        TenantDailyStats.objects.create(tenant=mine, date=day + timedelta(days=n), views=n, revenue=Decimal("1.50"))
        TenantDailyStats.objects.create(tenant=theirs, date=day + timedelta(days=n), views=100 + n)
    client = _member(mine)

    body = client.get("/api/analytics/", {"from": "2025-05-01", "to": "2025-05-02"}).json()
    assert body["tenant"] == mine.slug
    assert body["days"] == [
        {"date": "2025-05-01", "views": 0, "unique_visitors": 0, "redirects": 0, "orders": 0, "revenue": "1.50"},
        {"date": "2025-05-02", "views": 1, "unique_visitors": 0, "redirects": 0, "orders": 0, "revenue": "1.50"},
    ]
    # Another tenant's figures: a 404, as if it did not exist.
    assert client.get("/api/analytics/", {"from": "2025-05-01"}, headers={"X-Tenant": theirs.slug}).status_code == 404
    assert client.get("/api/analytics/", headers={"X-Tenant": "no-such"}).status_code == 404
    assert Client().get("/api/analytics/").status_code in (401, 403)
    # Bad ranges are 400s that say what is wrong.
    bad = client.get("/api/analytics/", {"from": "2025-05-09", "to": "2025-05-01"})
    assert bad.status_code == 400 and "from must not be after to" in bad.json()["detail"]
    assert client.get("/api/analytics/", {"from": "May 1"}).status_code == 400
    assert client.get("/api/analytics/", {"from": "2020-01-01", "to": "2025-01-01"}).status_code == 400
    # Default: the 30 days up to yesterday.
    TenantDailyStats.objects.create(tenant=mine, date=yesterday(), views=7)
    TenantDailyStats.objects.create(tenant=mine, date=yesterday() - timedelta(days=30), views=8)
    assert [d["views"] for d in client.get("/api/analytics/").json()["days"]] == [7]


def test_a_range_ending_early_in_year_one_is_clamped_not_a_500() -> None:
    """Found by the API fuzz (chaos/test_api_fuzz.py): the default 30-day window
    before ``to=0001-01-10`` overflowed the calendar into a 500."""
    tenant = TenantFactory.create()
    TenantDailyStats.objects.create(tenant=tenant, date=date(1, 1, 1), views=3)
    client = _member(tenant)

    response = client.get("/api/analytics/", {"to": "0001-01-10"})
    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"]) == ("0001-01-01", "0001-01-10")
    assert [d["views"] for d in body["days"]] == [3]
    assert client.get("/api/analytics/", {"to": "0001-01-01"}).json()["from"] == "0001-01-01"
