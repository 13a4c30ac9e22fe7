"""GeneratePdfReportJob: a tenant's month as a PDF.

Figures come from a handful of aggregate queries (never a walk over the
orders), are rendered through ``templates/analytics/monthly_report.html`` with
the daily sales chart drawn as inline SVG on the server, and WeasyPrint turns
the HTML into PDF bytes. The file is stored through Django's storage API and
handed out by a signed link (download kind ``report``), like sales exports.

docs/reports.md."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

import outbox
from analytics.models import MonthlyReport
from analytics.services import REVENUE_STATUSES, day_bounds, days_between
from lib.charts import Series, bar_chart
from orders.models import Order, OrderItem
from tenants.downloads import Download, send_download_link
from tenants.models import Tenant, TenantDailyStats

log = logging.getLogger(__name__)

TOP_PRODUCTS = 10
CHART_CSS = (
    "<style>.chart-title{font-size:11px;font-weight:bold;fill:#333}"
    ".chart-legend,.chart-axis{font-size:9px;fill:#555}.chart-empty{font-size:11px;fill:#888}"
    ".chart-grid{stroke:#ddd;stroke-width:0.5}</style>"
)


def month_start(value: str) -> date:
    """``YYYY-MM`` as the first day of that month; ValueError says what to send."""
    try:
        parsed = datetime.strptime(value, "%Y-%m")
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a month; use YYYY-MM, e.g. 2026-10") from None
    return parsed.date()


def month_end(month: date) -> date:
    """The last day of the month starting at ``month``."""
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def last_month() -> date:
    today = timezone.localdate()
    return month_start(f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}")


def report_request(*, tenant: Tenant, month: date, email: str = "", user_id: int | None = None) -> MonthlyReport:
    """Record the request and dispatch GeneratePdfReportJob after commit."""
    from analytics.jobs import generate_pdf_report

    if month.day != 1:
        raise ValueError("month must be the first day of a month")
    if month > timezone.localdate():
        raise ValueError("that month has not started yet")
    with transaction.atomic():
        report = MonthlyReport.objects.create(tenant=tenant, month=month, email=email, requested_by_id=user_id)
        generate_pdf_report.dispatch(tenant.pk, report.pk)
    return report


@dataclass(frozen=True)
class ProductLine:
    name: str
    sku: str
    quantity: int
    revenue: Decimal


@dataclass(frozen=True)
class DaySales:
    day: date
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class Figures:
    tenant: Tenant
    month: date
    last_day: date
    currency: str
    orders: int  # placed in the month, any status
    paid_orders: int  # of them PAID or FULFILLED
    revenue: Decimal
    average_order: Decimal
    cancelled: int
    refunded: int
    top_products: list[ProductLine]
    days: list[DaySales]
    views: int
    unique_visitors: int  # the sum of the daily counts (a visitor on two days counts twice)
    redirects: int
    analytics_days: int  # days with a TenantDailyStats row
    conversion: Decimal | None  # paid orders per 100 daily unique visitors


def report_figures(*, tenant: Tenant, month: date) -> Figures:
    """Everything the report prints, from aggregate queries in the site's time zone."""
    last = month_end(month)
    start, end = day_bounds(month)[0], day_bounds(last)[1]
    placed = Order.objects.filter(tenant=tenant, created_at__gte=start, created_at__lt=end)
    paid = placed.filter(status__in=REVENUE_STATUSES)
    totals = placed.aggregate(
        orders=Count("pk"),
        cancelled=Count("pk", filter=Q(status=Order.Status.CANCELLED)),
        refunded=Count("pk", filter=Q(status=Order.Status.REFUNDED)),
    )
    money = paid.aggregate(paid=Count("pk"), revenue=Sum("total", default=Decimal("0.00")))
    currency = (
        placed.values("currency").annotate(n=Count("pk")).order_by("-n", "currency").values_list("currency", flat=True)
    ).first() or "USD"
    top = (
        OrderItem.objects.filter(order__in=paid)
        .values("product_id", "product__name", "product__sku")
        .annotate(units=Sum("quantity"), sales=Sum(F("quantity") * F("unit_price")))
        .order_by("-sales", "product__name")[:TOP_PRODUCTS]
    )
    by_day = {
        row["day"]: row
        for row in placed.annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .values("day")
        .annotate(orders=Count("pk"), revenue=Sum("total", filter=Q(status__in=REVENUE_STATUSES)))
    }
    days = [
        DaySales(day, by_day[day]["orders"], by_day[day]["revenue"] or Decimal("0.00"))
        if day in by_day
        else DaySales(day, 0, Decimal("0.00"))
        for day in days_between(month, last)
    ]
    stats = TenantDailyStats.objects.filter(tenant=tenant, date__gte=month, date__lte=last).aggregate(
        views=Sum("views", default=0),
        unique_visitors=Sum("unique_visitors", default=0),
        redirects=Sum("redirects", default=0),
        days=Count("pk"),
    )
    revenue: Decimal = money["revenue"]
    paid_count: int = money["paid"]
    visitors: int = stats["unique_visitors"]
    return Figures(
        tenant=tenant,
        month=month,
        last_day=last,
        currency=currency,
        orders=totals["orders"],
        paid_orders=paid_count,
        revenue=revenue,
        average_order=(revenue / paid_count).quantize(Decimal("0.01")) if paid_count else Decimal("0.00"),
        cancelled=totals["cancelled"],
        refunded=totals["refunded"],
        top_products=[
            ProductLine(r["product__name"], r["product__sku"], r["units"], r["sales"] or Decimal("0.00")) for r in top
        ],
        days=days,
        views=stats["views"],
        unique_visitors=visitors,
        redirects=stats["redirects"],
        analytics_days=stats["days"],
        conversion=(Decimal(paid_count * 100) / visitors).quantize(Decimal("0.01")) if visitors else None,
    )


def sales_chart(figures: Figures) -> SafeString:
    """Revenue per day as SVG bars (the dashboard's server-side chart), x = day of month."""
    points = [(float(d.day.day), float(d.revenue)) for d in figures.days]
    if not any(y for _, y in points):
        points = []
    svg = bar_chart(
        [Series("Revenue", points)],
        title=f"Daily sales ({figures.currency})",
        width=700,
        height=220,
        step=1.0,
        x_format=lambda x: f"{figures.month:%b} {int(x)}",
    )
    # WeasyPrint styles inline SVG only from a <style> inside it, not from the
    # page's stylesheet; the first ">" closes the <svg> tag (attribute values
    # went through format_html, so none holds a literal ">").
    head, _, body = str(svg).partition(">")
    return mark_safe(f"{head}>{CHART_CSS}{body}")  # noqa: S308 - only escaped pieces and a constant


def render_html(figures: Figures) -> str:
    return render_to_string(
        "analytics/monthly_report.html",
        {"f": figures, "chart": sales_chart(figures), "generated_at": timezone.localtime()},
    )


def render_pdf(html: str) -> bytes:
    return render_pdf_pages(html)[0]


def render_pdf_pages(html: str) -> tuple[bytes, int]:
    """The PDF and its number of pages."""
    from weasyprint import HTML

    document = HTML(string=html, base_url=str(settings.BASE_DIR)).render()
    pdf: bytes = document.write_pdf()
    return pdf, len(document.pages)


def report_generate(*, tenant_id: int, report_id: int) -> MonthlyReport | None:
    """Build and store the PDF. A deleted report (or another tenant's id) is a no-op;
    running it again replaces the file (and its thumbnail, queued anew)."""
    from analytics.jobs import generate_report_thumbnail

    report = MonthlyReport.objects.select_related("tenant", "requested_by").filter(pk=report_id, tenant_id=tenant_id)
    found = report.first()
    if found is None:
        return None
    MonthlyReport.objects.filter(pk=found.pk).update(status=MonthlyReport.Status.RUNNING, error="")
    started = datetime.now(UTC)
    pdf, pages = render_pdf_pages(render_html(report_figures(tenant=found.tenant, month=found.month)))
    previous = found.file.name if found.file else ""
    previous_thumbnail = found.thumbnail.name if found.thumbnail else ""
    name = f"reports/{tenant_id}/report-{found.pk}-{found.month:%Y-%m}.pdf"
    stored = found.file.storage.save(name, ContentFile(pdf))
    _finish(found.pk, file=stored, pages=pages, size=len(pdf))
    # The old files go once nothing points at them (a thumbnail is of one PDF).
    for old in {previous, previous_thumbnail} - {"", stored}:
        found.file.storage.delete(old)
    generate_report_thumbnail.dispatch(tenant_id, found.pk)  # jobs run in autocommit: queued now
    log.info(
        "monthly report %s (%s %s) rendered in %.2fs, %d bytes",
        found.pk,
        found.tenant.slug,
        f"{found.month:%Y-%m}",
        (datetime.now(UTC) - started).total_seconds(),
        len(pdf),
    )
    found.refresh_from_db()
    _notify(found)
    return found


def _finish(report_id: int, *, file: str, pages: int, size: int) -> None:
    """Done, and ``report.ready`` in the same transaction, once per report: a run
    again (a retry) replaces the file but finds the report finished before."""
    with transaction.atomic():
        report = MonthlyReport.objects.select_for_update().get(pk=report_id)
        announced = report.finished_at is not None
        MonthlyReport.objects.filter(pk=report_id).update(
            status=MonthlyReport.Status.DONE, file=file, thumbnail="", finished_at=timezone.now()
        )
        if announced:
            return
        # The status URL, not a download link: a signed link is a bearer
        # credential that expires, and would be stored with the message.
        status_url = settings.SITE_URL.rstrip("/") + reverse("api-report-detail", args=[report_id])
        outbox.publish(
            "report.ready",
            {
                "report_id": report_id,
                "month": f"{report.month:%Y-%m}",
                "pages": pages,
                "size": size,
                "status_url": status_url,
            },
            aggregate=("report", report_id),
            tenant=report.tenant_id,
        )


def _notify(report: MonthlyReport) -> None:
    recipient = report.email or (report.requested_by.email if report.requested_by else "")
    if not recipient:
        return
    send_download_link(
        kind="report",
        object_id=report.pk,
        tenant_id=report.tenant_id,
        to=recipient,
        template="report_ready",
        subject=f"Your monthly report for {report.month:%B %Y} is ready",
        context={"report": report},
    )


def resolve_report_download(object_id: int, tenant_id: int) -> Download | None:
    done = MonthlyReport.objects.filter(status=MonthlyReport.Status.DONE).select_related("tenant")
    report = done.filter(pk=object_id, tenant_id=tenant_id).first()
    if report is None or not report.file:
        return None
    return Download(
        path=report.file.name,
        filename=f"report-{report.tenant.slug}-{report.month:%Y-%m}.pdf",
        content_type="application/pdf",
    )


def report_still_needed(now: datetime) -> Q:
    """Reports the purge must keep: still being made, or one whose download link may still work."""
    link_valid_since = now - timedelta(seconds=settings.DOWNLOAD_LINK_LIFETIME)
    return Q(status__in=[MonthlyReport.Status.QUEUED, MonthlyReport.Status.RUNNING]) | Q(
        finished_at__gte=link_valid_since
    )
