from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from outbox.routes import route

        # GenerateBusinessProfile: an approved tenant gets an AI-written profile.
        route("tenant.approved", "orders.profiles.handle_tenant_approved")
        from orders.admin import enhance_profile
        from orders.exports import resolve_export_download
        from orders.payment_events import register_payment_handlers
        from tenants.admin import contribute_admin_action
        from tenants.downloads import register_download
        from tenants.models import BusinessProfile, Tenant

        register_download("export", resolve_export_download)
        # Payment providers' events move orders (webhooks' dispatch tables).
        register_payment_handlers()
        # "Enhance profile" on tenants and their profiles (it reads the catalog).
        contribute_admin_action(Tenant, enhance_profile)
        contribute_admin_action(BusinessProfile, enhance_profile)
