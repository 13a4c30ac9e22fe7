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
        route("webhook.received", "webhooks.processing.handle_webhook_event", queue="high")
        # The event's name before it moved here from `orders`: messages
        # published under it before an upgrade are still processed after it.
        route("payment.webhook_received", "webhooks.processing.handle_webhook_event", queue="high")
        register("webhooks", webhook_status)
        register_handler(PROVIDER, SMOKE_TYPE, smoke_handle)
