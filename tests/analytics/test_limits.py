from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis import Redis

from analytics.jobs import audit_tenant_limits
from analytics.limits import limits_audit
from analytics.models import LimitAudit, LimitNotice
from config.schedule import SCHEDULE
from marketing.models import Campaign, CampaignDelivery, Subscriber
from orders.models import Product, SalesExport
from tenants.models import Plan, Tenant
from tests.factories import OrderFactory, PlanFactory, TenantFactory
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _plan(**limits: int) -> Plan:
    values = {
        "max_products": 100,
        "max_orders_per_month": 100,
        "max_campaign_recipients_per_month": 100,
        "max_storage_mb": 100,
    }
    return PlanFactory.create(**(values | limits))


def _products(tenant: Tenant, count: int) -> None:
    start = Product.objects.filter(tenant=tenant).count()
    Product.objects.bulk_create(
        Product(tenant=tenant, sku=f"{tenant.slug}-{start + n}", name="P", price=1, stock_quantity=1)
        for n in range(count)
    )


def test_it_warns_once_at_90_percent_then_once_over_and_again_next_month(smtp_server: Any) -> None:
    tenant = TenantFactory.create(name="Shop Nova", plan=_plan(max_products=100))
    _products(tenant, 50)
    assert limits_audit(now=NOW).sent == 0
    assert smtp_server.messages == []
    assert LimitAudit.objects.get(tenant=tenant, resource="products").level == "ok"

    _products(tenant, 41)  # 91%
    summary = limits_audit(now=NOW)
    assert (summary.warnings, summary.sent) == (1, 1)
    [warning] = smtp_server.messages
    assert warning["To"] == tenant.owner_email and "close to" in warning["Subject"]
    assert "91 of 100 (91%)" in warning.get_body(("plain",)).get_content()
    assert "<strong>Shop Nova</strong>" in warning.get_body(("html",)).get_content()

    assert limits_audit(now=NOW + timedelta(days=1)).sent == 0  # the next day: no second mail
    assert len(smtp_server.messages) == 1

    _products(tenant, 10)  # 101 of 100
    assert limits_audit(now=NOW + timedelta(days=2)).sent == 1
    assert limits_audit(now=NOW + timedelta(days=3)).sent == 0
    over = smtp_server.messages[-1]
    assert len(smtp_server.messages) == 2 and "over your plan" in over["Subject"]

    next_month = datetime(2026, 4, 1, 1, 30, tzinfo=UTC)
    assert limits_audit(now=next_month).sent == 1  # a new month: heard about again
    audit = LimitAudit.objects.filter(tenant=tenant, resource="products").latest("audited_at")
    assert (audit.used, audit.limit, audit.level) == (101, 100, "over") and audit.ratio == pytest.approx(1.01)


def test_monthly_resources_count_only_this_month(smtp_server: Any) -> None:
    tenant = TenantFactory.create(plan=_plan(max_orders_per_month=10, max_campaign_recipients_per_month=2))
    for _ in range(9):
        OrderFactory.create(tenant=tenant, created_at=NOW - timedelta(days=1))
    for _ in range(5):
        OrderFactory.create(tenant=tenant, created_at=NOW - timedelta(days=40))  # last month
    campaign = Campaign.objects.create(tenant=tenant, subject="Hi", body="…")
    for n, (status, sent_at) in enumerate(
        [("sent", NOW), ("sent", NOW), ("sent", NOW), ("failed", None), ("sent", NOW - timedelta(days=40))]
    ):
        subscriber = Subscriber.objects.create(tenant=tenant, email=f"s{n}@example.com")
        CampaignDelivery.objects.create(campaign=campaign, subscriber=subscriber, status=status, sent_at=sent_at)

    summary = limits_audit(now=NOW)
    levels = {a.resource: (a.used, a.level) for a in summary.audits}
    assert levels["orders"] == (9, "warning") and levels["recipients"] == (3, "over")
    assert sorted(str(m["Subject"]) for m in smtp_server.messages) == sorted(
        [
            f"{tenant.name}: orders this month close to your plan's limit",
            f"{tenant.name}: campaign recipients this month over your plan's limit",
        ]
    )


def test_storage_counts_product_images_and_export_files(smtp_server: Any, settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    tenant = TenantFactory.create(plan=_plan(max_storage_mb=1))
    product = Product.objects.create(tenant=tenant, sku="IMG", name="P", price=1, stock_quantity=1)
    product.image.save("a.png", ContentFile(b"x" * 700_000), save=True)
    Product.objects.create(tenant=tenant, sku="GONE", name="P", price=1, stock_quantity=1, image="products/gone.png")
    name = default_storage.save("exports/e.csv", ContentFile(b"y" * 300_000))
    SalesExport.objects.create(tenant=tenant, date_from=NOW.date(), date_to=NOW.date(), status="done", file=name)

    [storage] = [a for a in limits_audit(now=NOW).audits if a.resource == "storage"]
    assert (storage.used, storage.limit, storage.level) == (1_000_000, 1024 * 1024, "warning")
    assert "storage" in str(smtp_server.messages[0]["Subject"]).lower()


def test_two_runs_at_once_send_each_notice_once(smtp_server: Any) -> None:
    plan = _plan(max_products=10)
    tenants = [TenantFactory.create(plan=plan) for _ in range(15)]
    for tenant in tenants:
        _products(tenant, 9)
    sent: list[int] = []

    def run() -> None:
        try:
            sent.append(limits_audit(now=NOW).sent)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sent) == 15
    assert sorted(str(m["To"]) for m in smtp_server.messages) == sorted(t.owner_email for t in tenants)
    assert LimitNotice.objects.count() == 15


def test_a_failed_send_releases_the_claim_and_the_next_run_sends(smtp_server: Any) -> None:
    tenant = TenantFactory.create(plan=_plan(max_products=10))
    _products(tenant, 10)
    smtp_server.reject = True
    summary = limits_audit(now=NOW)
    assert (summary.sent, summary.failed) == (0, 1)
    assert not LimitNotice.objects.exists()

    smtp_server.reject = False
    assert limits_audit(now=NOW).sent == 1
    assert len(smtp_server.messages) == 1 and LimitNotice.objects.filter(tenant=tenant, level="warning").exists()


def test_queries_are_bounded_for_200_tenants(smtp_server: Any) -> None:
    plan = _plan(max_products=2)
    Tenant.objects.bulk_create(
        Tenant(slug=f"bulk-{n}", name=f"Bulk {n}", plan=plan, owner_email=f"o{n}@example.com", status="approved")
        for n in range(200)
    )
    tenants = list(Tenant.objects.order_by("pk"))
    Product.objects.bulk_create(
        Product(tenant=t, sku=f"B-{t.pk}", name="P", price=1, stock_quantity=1) for t in tenants
    )
    for tenant in tenants[:3]:  # three over the limit: their notices cost a few queries each
        _products(tenant, 2)
    with CaptureQueriesContext(connection) as queries:
        summary = limits_audit(now=NOW)
    assert summary.tenants == 200 and summary.sent == 3
    assert LimitAudit.objects.count() == 800
    assert len(queries) < 30, [q["sql"] for q in queries]
    with CaptureQueriesContext(connection) as queries:
        assert limits_audit(now=NOW).sent == 0
    assert len(queries) < 12


def test_only_approved_tenants_unless_named(smtp_server: Any) -> None:
    plan = _plan(max_products=1)
    suspended = TenantFactory.create(plan=plan, status=Tenant.Status.SUSPENDED)
    _products(suspended, 5)
    assert limits_audit(now=NOW).tenants == 0
    summary = limits_audit(tenant_id=suspended.pk, now=NOW)
    assert (summary.tenants, summary.over, summary.sent) == (1, 1, 1)


def test_command_audits_one_tenant_and_a_bad_slug_exits_2(smtp_server: Any, capsys: Any) -> None:
    tenant = TenantFactory.create(slug="acme", plan=_plan(max_products=1))
    _products(tenant, 1)
    call_command("audit_tenant_limits", "--tenant", "acme", "--dry-run")
    out = capsys.readouterr().out
    assert "acme: products 1/1 (100%) warning" in out and "dry run" in out
    assert not LimitAudit.objects.exists() and smtp_server.messages == []

    call_command("audit_tenant_limits", "--tenant", "acme")
    assert "1 e-mail(s) sent" in capsys.readouterr().out and len(smtp_server.messages) == 1

    with pytest.raises(CommandError) as error:
        call_command("audit_tenant_limits", "--tenant", "nope")
    assert error.value.returncode == 2 and "nope" in str(error.value)


def test_the_job_is_scheduled_daily_and_runs_on_a_worker(
    smtp_server: Any, settings: Any, redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    [entry] = [e for e in SCHEDULE if e.name == "tenant-limits-audit"]
    assert entry.job == "analytics.jobs.audit_tenant_limits" and entry.cron == "30 1 * * *"
    tenant = TenantFactory.create(plan=_plan(max_products=1))
    _products(tenant, 2)
    # The worker is another process: point its e-mail at the test SMTP server.
    monkeypatch.setenv("EMAIL_URL", f"smtp://{settings.EMAIL_HOST}:{settings.EMAIL_PORT}")
    audit_tenant_limits.dispatch()
    assert run_worker("default", "--burst").returncode == 0
    assert LimitAudit.objects.filter(tenant=tenant).count() == 4
    [message] = smtp_server.messages
    assert message["To"] == tenant.owner_email and "over your plan" in message["Subject"]
