from django.urls import path

from webhooks.views import PaymentWebhookView, StripeWebhookView

urlpatterns = [
    path("api/webhooks/payments/", PaymentWebhookView.as_view(), name="webhook-payments"),
    path("api/webhooks/stripe/", StripeWebhookView.as_view(), name="webhook-stripe"),
]
