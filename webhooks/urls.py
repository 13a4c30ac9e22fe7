from django.urls import path

from webhooks.views import CalendarWebhookView, PaymentWebhookView, StripeWebhookView, VoiceWebhookView

urlpatterns = [
    path("api/webhooks/payments/", PaymentWebhookView.as_view(), name="webhook-payments"),
    path("api/webhooks/stripe/", StripeWebhookView.as_view(), name="webhook-stripe"),
    path("api/webhooks/calendar/<slug:account>/", CalendarWebhookView.as_view(), name="webhook-calendar"),
    path("api/webhooks/voice/<slug:account>/", VoiceWebhookView.as_view(), name="webhook-voice"),
]
