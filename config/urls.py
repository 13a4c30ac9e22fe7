from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, include, path, re_path
from django.views.generic import RedirectView, TemplateView
from django_rq import stats_views
from drf_spectacular.views import SpectacularAPIView

from analytics.api import DailyStatsView, ReportDetailView, ReportListView, ReportThumbnailView
from orders.api import ExportDetailView, ExportListView, ProductImageView
from queueing import django_rq_actions
from queueing.views import metrics_view
from tenants import tracking
from tenants.downloads import signed_download
from tenants.tracking.api import ErasureDetailView, ErasureListView

# A database that cannot be reached answers 503 + Retry-After site-wide, not 500 (config/errors.py).
handler500 = "config.errors.server_error"


def healthz(_request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Readiness checks live in queue_health.

    Touches neither PostgreSQL nor Redis on purpose: during their outage it
    stays 200, so no orchestrator restarts workers that reconnect by themselves.
    """
    return HttpResponse("ok", content_type="text/plain")


def django_rq_ledger_urls() -> list[URLPattern]:
    """django-rq's five failed-job actions, each its own view wrapped (queueing/django_rq_actions.py)."""
    base = "admin/django_rq/dashboard/queues/<int:queue_index>/"
    pairs = [
        ("<str:job_id>/delete/", django_rq_actions.delete_job),
        ("<str:job_id>/requeue/", django_rq_actions.requeue_job),
        ("requeue-all/", django_rq_actions.requeue_all),
        ("failed/clear/", django_rq_actions.delete_failed_jobs),
        ("actions/", django_rq_actions.actions),
    ]
    return [path(base + rest, admin.site.admin_view(view)) for rest, view in pairs]


urlpatterns = [
    # A newcomer's first page after `make run`: links to the admin, the dashboard and the API schema.
    path("", TemplateView.as_view(template_name="config/home.html"), name="home"),
    # Public tracking: plain Django views, one Redis round trip per hit (tenants/tracking/).
    path("t/<slug:tenant>/pixel.gif", tracking.pixel, name="tracking-pixel"),
    path("t/<slug:tenant>/r/<slug:code>", tracking.redirect, name="tracking-redirect"),
    # Inbound webhooks: /api/webhooks/payments/ (Standard Webhooks), /api/webhooks/stripe/,
    # and per tenant /api/webhooks/calendar/<slug>/ (Cal.com), /api/webhooks/voice/<slug>/ (Retell).
    path("", include("webhooks.urls")),
    # The tenant API's OpenAPI 3 schema (YAML; ?format=json or Accept: application/vnd.oai.openapi+json for JSON).
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/exports/", ExportListView.as_view(), name="api-exports"),
    path("api/exports/<int:export_id>/", ExportDetailView.as_view(), name="api-export-detail"),
    path("api/products/<int:product_id>/image/", ProductImageView.as_view(), name="api-product-image"),
    path("api/analytics/", DailyStatsView.as_view(), name="api-analytics"),
    path("api/reports/", ReportListView.as_view(), name="api-reports"),
    path("api/reports/<int:report_id>/", ReportDetailView.as_view(), name="api-report-detail"),
    path("api/reports/<int:report_id>/thumbnail/", ReportThumbnailView.as_view(), name="api-report-thumbnail"),
    path("api/privacy/erase/", ErasureListView.as_view(), name="api-privacy-erase"),
    path("api/privacy/erase/<int:erasure_id>/", ErasureDetailView.as_view(), name="api-privacy-erase-detail"),
    # The queue dashboard has its own access rule (not superusers-only), so it comes before the admin.
    path("admin/queues/", include("queueing.dashboard.urls")),
    # django-rq leaves its stats.json and Prometheus views open to any staff
    # user (or RQ_API_TOKEN); here they sit behind the operators' gate like the
    # rest of the admin. /metrics (METRICS_TOKEN) is the scrape endpoint.
    re_path(r"^admin/django_rq/dashboard/stats\.json/?", admin.site.admin_view(stats_views.stats_json)),
    re_path(r"^admin/django_rq/dashboard/metrics/?$", admin.site.admin_view(stats_views.prometheus_metrics)),
    # django-rq's requeue and delete of failed jobs, kept in step with our failed-job ledger.
    *django_rq_ledger_urls(),
    # Webhook events moved from orders to their own app: old bookmarks and alert e-mails still land.
    re_path(
        r"^admin/orders/webhookevent/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/webhooks/webhookevent/%(rest)s", query_string=True),
    ),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus; bearer METRICS_TOKEN
    path("d/<str:token>/", signed_download, name="signed-download"),
    # Bookings API: /api/appointments/ (with cancel, reschedule), /api/customers/, /api/services/, /api/staff/.
    path("", include("appointments.urls")),
    # Campaigns API (/api/campaigns/…) and the unsubscribe link (/u/<token>/).
    path("", include("marketing.urls")),
    # Outbound webhooks: /api/webhook-endpoints/ (deliveries, resend, recover,
    # rotate-secret) and /api/webhook-event-types/.
    path("", include("tenants.urls")),
]
