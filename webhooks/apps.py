from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        from outbox.routes import route
        from queueing.status import register
        from webhooks.intake import PROCESS_EVENT
        from webhooks.providers import PROVIDERS, register_handler
        from webhooks.smoke import PROVIDER, SMOKE_TYPE, smoke_handle
        from webhooks.status import webhook_status

        # Stored events are processed on the logical queue `webhooks` (`high` in
        # Vito's layout, `webhooks` in AskProAI's; 5 tries, backoff).
        # Before this app existed the handler lived in orders: delivery jobs
        # queued under that path before an upgrade still run (once).
        route(
            PROCESS_EVENT,
            "webhooks.processing.handle_webhook_event",
            queue="webhooks",
            formerly=["orders.webhook_services.handle_webhook_event"],
        )
        # Per-account providers' events go as their own process event, so each
        # gets its timeout and tries (seed 002: calendar 90 s, calls 120 s, 3 tries).
        for name, timeout in (("calcom", 90), ("retell", 120)):
            route(
                PROVIDERS[name].process_event,
                "webhooks.processing.handle_webhook_event",
                queue="webhooks",
                timeout=timeout,
                tries=3,
            )
        register("webhooks", webhook_status)
        # Outbound: the disabled-endpoint notice; its status beside the inbound one.
        from webhooks.outbound.services import DISABLED_EVENT
        from webhooks.outbound.status import outbound_status

        route(DISABLED_EVENT, "webhooks.outbound.notices.endpoint_disabled_notice", queue="notifications")
        register("webhook_deliveries", outbound_status)
        register_handler(PROVIDER, SMOKE_TYPE, smoke_handle)

        # Handled events go with the nightly purge; one still waiting or failing stays.
        from django.db.models import Q

        from queueing.retention import Kind, register_kind
        from webhooks.models import WebhookEvent

        register_kind(
            Kind(
                "webhook_events",
                WebhookEvent,
                "received_at",
                default_days=30,
                description="inbound webhook events already processed or ignored",
                still_needed=lambda now: ~Q(status__in=[WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED]),
            )
        )
