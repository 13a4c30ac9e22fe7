from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        from outbox.routes import route
        from queueing.status import register
        from webhooks.providers import register_handler
        from webhooks.smoke import PROVIDER, SMOKE_TYPE, smoke_handle
        from webhooks.status import webhook_status

        # Stored events are processed on the `high` queue (5 tries, backoff).
        # Before this app existed the event was `payment.webhook_received` and its
        # handler lived in orders: messages and jobs from before an upgrade still run.
        handler, formerly = "webhooks.processing.handle_webhook_event", ["orders.webhook_services.handle_webhook_event"]
        route("webhook.received", handler, queue="high", formerly=formerly)
        route("payment.webhook_received", handler, queue="high", formerly=formerly)
        register("webhooks", webhook_status)
        register_handler(PROVIDER, SMOKE_TYPE, smoke_handle)
