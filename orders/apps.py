from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from orders.exports import resolve_export_download
        from orders.payment_events import HANDLERS
        from orders.selectors import catalog_sample
        from tenants.downloads import register_download
        from tenants.profiles import register_catalog
        from webhooks.providers import register_handler

        register_download("export", resolve_export_download)
        # Payment providers' events move orders (webhooks' dispatch tables).
        for provider, event_type, handle, validate in HANDLERS:
            register_handler(provider, event_type, handle, validate=validate)
        # The AI business profile is written from the tenant's catalog.
        register_catalog(catalog_sample)

        # Exports and their files go with the nightly purge once done (or failed)
        # and past the lifetime of any link sent for them.
        from orders.exports import export_still_needed
        from orders.models import SalesExport
        from queueing.retention import Kind, register_kind

        register_kind(
            Kind(
                "sales_exports",
                SalesExport,
                "created_at",
                default_days=30,
                description="sales exports and their files",
                tenant_field="tenant_id",
                still_needed=export_still_needed,
                file_fields=("file",),
                file_prefix="exports/",
            )
        )

        # Outbound webhooks: orders, refunds and exports tenants' endpoints can subscribe to.
        from orders.event_types import EVENT_TYPES
        from webhooks.outbound.catalog import register_event_type

        for outbound_type in EVENT_TYPES:
            register_event_type(outbound_type)
