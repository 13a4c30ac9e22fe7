from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from orders.api import ExportDetailView, ExportListView, ProductImageView
from orders.webhooks import PaymentWebhookView, StripeWebhookView
from tenants.downloads import signed_download


def healthz(_request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Readiness checks live in queue_health."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("api/webhooks/payments/", PaymentWebhookView.as_view(), name="webhook-payments"),
    path("api/webhooks/stripe/", StripeWebhookView.as_view(), name="webhook-stripe"),
    path("api/exports/", ExportListView.as_view(), name="api-exports"),
    path("api/exports/<int:export_id>/", ExportDetailView.as_view(), name="api-export-detail"),
    path("api/products/<int:product_id>/image/", ProductImageView.as_view(), name="api-product-image"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("d/<str:token>/", signed_download, name="signed-download"),
]
