from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from outbox.routes import route

        # Stored webhook events are processed on the `high` queue (5 tries, backoff).
        route("payment.webhook_received", "orders.webhook_services.handle_webhook_event", queue="high")
        # GenerateBusinessProfile: an approved tenant gets an AI-written profile.
        route("tenant.approved", "orders.profiles.handle_tenant_approved")
        # Registers the "export" kind of signed download.
        import orders.exports  # noqa: F401
        from orders.status import webhook_status
        from queueing.status import register

        register("webhooks", webhook_status)
