from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from orders.webhooks import PaymentWebhookView, StripeWebhookView


def healthz(_request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Readiness checks live in queue_health."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("api/webhooks/payments/", PaymentWebhookView.as_view(), name="webhook-payments"),
    path("api/webhooks/stripe/", StripeWebhookView.as_view(), name="webhook-stripe"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
