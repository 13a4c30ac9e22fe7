from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from outbox.routes import route

        # Stored webhook events are processed on the `high` queue (5 tries, backoff).
        route("payment.webhook_received", "orders.webhook_services.handle_webhook_event", queue="high")
        # GenerateBusinessProfile: an approved tenant gets an AI-written profile.
        route("tenant.approved", "orders.profiles.handle_tenant_approved")
        from orders.admin import enhance_profile
        from orders.exports import resolve_export_download
        from orders.status import webhook_status
        from queueing.status import register
        from tenants.admin import contribute_admin_action
        from tenants.downloads import register_download
        from tenants.models import BusinessProfile, Tenant

        register_download("export", resolve_export_download)
        register("webhooks", webhook_status)
        # "Enhance profile" on tenants and their profiles (it reads the catalog).
        contribute_admin_action(Tenant, enhance_profile)
        contribute_admin_action(BusinessProfile, enhance_profile)
