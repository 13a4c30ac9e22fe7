"""GeneratePdfReportJob: POST /api/reports/ → worker → signed PDF download."""

from __future__ import annotations

import io
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from pypdf import PdfReader
from redis import Redis
from rest_framework.authtoken.models import Token

from analytics.models import MonthlyReport
from analytics.reports import last_month, month_end, render_html, render_pdf, report_figures
from analytics.services import day_bounds
from orders.models import Order, OrderItem
from queueing.dispatch import get_queue
from tenants.models import Tenant, TenantDailyStats, TenantMember
from tests.factories import OrderFactory, ProductFactory, TenantFactory, UserFactory
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)

MONTH = date(2026, 3, 1)


def _member(tenant: Tenant) -> Client:
    user = UserFactory.create(email="owner@example.com")
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    token = Token.objects.create(user=user)
    return Client(headers={"Authorization": f"Token {token.key}"})


def _sell(tenant: Tenant, product: Any, day: date, quantity: int, status: str = Order.Status.PAID) -> Order:
    total = product.price * quantity
    order = OrderFactory.create(
        tenant=tenant, status=status, total=total, created_at=day_bounds(day)[0] + timedelta(hours=12)
    )
    OrderItem.objects.create(order=order, product=product, quantity=quantity, unit_price=product.price)
    return order


def _seed(tenant: Tenant) -> None:
    widget = ProductFactory.create(tenant=tenant, name="Walnut Widget", price=Decimal("25.00"))
    gadget = ProductFactory.create(tenant=tenant, name="Copper Gadget", price=Decimal("10.00"))
    _sell(tenant, widget, MONTH, 4)  # 100.00
    _sell(tenant, widget, MONTH + timedelta(days=9), 2)  # 50.00
    _sell(tenant, gadget, MONTH + timedelta(days=9), 3)  # 30.00
    _sell(tenant, gadget, MONTH + timedelta(days=20), 50, status=Order.Status.CANCELLED)  # not revenue
    _sell(tenant, widget, MONTH - timedelta(days=1), 9)  # the month before
    for n in range(3):
        TenantDailyStats.objects.create(
            tenant=tenant, date=MONTH + timedelta(days=n), views=100, unique_visitors=40, redirects=7
        )


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_it_renders_the_month_end_to_end(redis_conn: Redis, smtp_server: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("EMAIL_URL", smtp_server.url)  # the worker e-mails through the test SMTP server
    tenant = TenantFactory.create()
    _seed(tenant)
    _seed_other = TenantFactory.create()
    ProductFactory.create(tenant=_seed_other, name="Foreign Thing")
    client = _member(tenant)
    response = client.post("/api/reports/", {"month": "2026-03"}, content_type="application/json")
    assert response.status_code == 202, response.content
    status_url = response.json()["status_url"]
    assert client.get(status_url).json()["status"] == "queued"
    worker = run_worker("default", "--burst")
    assert worker.returncode == 0, worker.stderr
    [mail] = smtp_server.messages
    assert mail["To"] == "owner@example.com" and "March 2026" in mail["Subject"]
    assert "the link works for 24 hours" in mail.get_body(("plain",)).get_content()
    assert "/d/" in mail.get_body(("html",)).get_content()
    body = client.get(status_url).json()
    assert (body["status"], body["month"]) == ("done", "2026-03")
    download = client.get(body["download_url"])
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    content = b"".join(download.streaming_content)  # type: ignore[attr-defined]
    download.close()
    assert content.startswith(b"%PDF")
    text = _pdf_text(content)
    assert "180.00" in text  # revenue: paid orders of March only
    assert "Walnut Widget" in text and "Copper Gadget" in text
    assert text.index("Walnut Widget") < text.index("Copper Gadget")  # ranked by revenue
    assert "Foreign Thing" not in text
    assert "300" in text and "120" in text  # views and unique visitors of the 3 tracked days


def test_the_figures(redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    _seed(tenant)
    f = report_figures(tenant=tenant, month=MONTH)
    assert (f.orders, f.paid_orders, f.revenue, f.cancelled) == (4, 3, Decimal("180.00"), 1)
    assert [(p.name, p.quantity, p.revenue) for p in f.top_products] == [
        ("Walnut Widget", 6, Decimal("150.00")),
        ("Copper Gadget", 3, Decimal("30.00")),
    ]
    assert len(f.days) == 31 and f.days[9].revenue == Decimal("80.00") and f.days[20].orders == 1
    assert (f.views, f.unique_visitors, f.analytics_days, f.conversion) == (300, 120, 3, Decimal("2.50"))
    assert month_end(date(2024, 2, 1)) == date(2024, 2, 29) and month_end(date(2026, 12, 1)) == date(2026, 12, 31)


def test_an_empty_month_still_renders(redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    pdf = render_pdf(render_html(report_figures(tenant=tenant, month=MONTH)))
    assert pdf.startswith(b"%PDF") and "No paid orders this month" in _pdf_text(pdf)


def test_bad_input_and_another_tenants_report(redis_conn: Redis) -> None:
    mine, theirs = TenantFactory.create(), TenantFactory.create()
    client = _member(mine)
    for month in ("2026-13", "March", "", "2999-01"):
        response = client.post("/api/reports/", {"month": month}, content_type="application/json")
        assert response.status_code == 400 and "month" in response.json()
    assert client.post("/api/reports/", {}, content_type="application/json").status_code == 400
    foreign = MonthlyReport.objects.create(tenant=theirs, month=MONTH)
    assert client.get(f"/api/reports/{foreign.pk}/").status_code == 404
    assert client.get(f"/api/reports/{foreign.pk}/", headers={"X-Tenant": theirs.slug}).status_code == 404
    assert Client().post("/api/reports/", {"month": "2026-03"}).status_code in (401, 403)
    assert get_queue("default").count == 0


def test_a_month_without_its_leading_zero_is_accepted(redis_conn: Redis) -> None:
    client = _member(TenantFactory.create())
    response = client.post("/api/reports/", {"month": "2026-3"}, content_type="application/json")
    assert response.status_code == 202, response.content
    assert client.get(response.json()["status_url"]).json()["month"] == "2026-03"


def test_the_admin_action_queues_last_months_report(redis_conn: Redis, client: Any) -> None:
    tenants = [TenantFactory.create() for _ in range(2)]
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/tenants/tenant/",
        {"action": "generate_monthly_report", "_selected_action": [t.pk for t in tenants]},
        follow=True,
    )
    assert response.status_code == 200 and b"queued for 2 tenant(s)" in response.content
    assert set(MonthlyReport.objects.values_list("tenant_id", "month")) == {(t.pk, last_month()) for t in tenants}
    assert get_queue("default").count == 2
    assert run_worker("default", "--burst").returncode == 0
    assert MonthlyReport.objects.filter(status=MonthlyReport.Status.DONE).count() == 2


def test_a_thousand_orders_render_quickly(redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    products = [ProductFactory.create(tenant=tenant, price=Decimal(5 + n)) for n in range(20)]
    orders = Order.objects.bulk_create(
        Order(
            tenant=tenant,
            number=f"B-{n:05d}",
            status=Order.Status.PAID,
            customer_email="c@example.com",
            total=products[n % 20].price,
            created_at=day_bounds(MONTH + timedelta(days=n % 31))[0] + timedelta(hours=n % 24),
        )
        for n in range(1000)
    )
    OrderItem.objects.bulk_create(
        OrderItem(order=o, product=products[n % 20], quantity=1, unit_price=products[n % 20].price)
        for n, o in enumerate(orders)
    )
    started = time.monotonic()
    f = report_figures(tenant=tenant, month=MONTH)
    pdf = render_pdf(render_html(f))
    elapsed = time.monotonic() - started
    assert f.paid_orders == 1000 and pdf.startswith(b"%PDF")
    assert elapsed < 30, f"1000-order month took {elapsed:.2f}s"


def test_the_thumbnail_is_the_first_page_as_a_png_rendered_on_high(redis_conn: Redis) -> None:
    from PIL import Image

    from analytics.thumbnails import THUMBNAIL_WIDTH

    tenant = TenantFactory.create()
    _seed(tenant)
    client = _member(tenant)
    report_id = client.post("/api/reports/", {"month": "2026-03"}, content_type="application/json").json()["id"]
    thumbnail_url = f"/api/reports/{report_id}/thumbnail/"
    assert client.get(thumbnail_url).status_code == 202  # the report is not made yet: it queues its own

    assert run_worker("default", "--burst").returncode == 0  # the PDF; its thumbnail is queued on `high`
    report = MonthlyReport.objects.get(pk=report_id)
    assert report.status == "done" and not report.thumbnail
    assert get_queue("high").count == 1
    assert run_worker("high", "--burst").returncode == 0
    report.refresh_from_db()
    assert report.thumbnail.name.startswith(f"reports/{tenant.pk}/thumbnails/report-{report_id}")

    body = client.get(f"/api/reports/{report_id}/").json()
    redirect = client.get(thumbnail_url)
    assert redirect.status_code == 302 and redirect["Location"] == body["thumbnail_url"]
    download = client.get(body["thumbnail_url"])
    assert download.status_code == 200 and download["Content-Type"] == "image/png"
    assert "attachment" not in download.get("Content-Disposition", "")  # shown, not saved
    png = b"".join(download.streaming_content)  # type: ignore[attr-defined]
    download.close()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    # The first page: A4 portrait (the report's page size), with its title in dark ink at the top.
    width, height = image.size
    assert width == THUMBNAIL_WIDTH and abs(height / width - 297 / 210) < 0.01
    top = image.convert("L").crop((0, 0, width, height // 5))
    darkest, _ = top.getextrema()
    assert isinstance(darkest, int) and darkest < 100  # some dark pixels: the header text
    assert sum(image.convert("L").histogram()[241:]) > 0.5 * width * height  # mostly paper


def test_thumbnail_requests_queue_once_and_a_failed_report_has_none(redis_conn: Redis) -> None:
    from analytics.thumbnails import thumbnail_generate

    tenant = TenantFactory.create()
    client = _member(tenant)
    failed = MonthlyReport.objects.create(tenant=tenant, month=MONTH, status="failed", error="boom")
    assert client.get(f"/api/reports/{failed.pk}/thumbnail/").status_code == 409
    pdf = render_pdf(render_html(report_figures(tenant=tenant, month=MONTH)))
    from django.core.files.base import ContentFile

    done = MonthlyReport.objects.create(tenant=tenant, month=MONTH, status="done")
    done.file.save(f"reports/{tenant.pk}/r.pdf", ContentFile(pdf))
    for _ in range(3):
        assert client.get(f"/api/reports/{done.pk}/thumbnail/").status_code == 202
    assert get_queue("high").count == 1  # unique: three requests, one job
    assert thumbnail_generate(tenant_id=tenant.pk, report_id=done.pk) is not None
    first = MonthlyReport.objects.get(pk=done.pk).thumbnail.name
    thumbnail_generate(tenant_id=tenant.pk, report_id=done.pk)  # again: nothing twice
    assert MonthlyReport.objects.get(pk=done.pk).thumbnail.name == first
    other = TenantFactory.create()
    assert client.get(f"/api/reports/{done.pk}/thumbnail/", headers={"X-Tenant": other.slug}).status_code == 404
