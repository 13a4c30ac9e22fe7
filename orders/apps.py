from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from orders.exports import resolve_export_download
        from orders.payment_events import register_payment_handlers
        from orders.selectors import catalog_sample
        from tenants.downloads import register_download
        from tenants.profiles import register_catalog

        register_download("export", resolve_export_download)
        # Payment providers' events move orders (webhooks' dispatch tables).
        register_payment_handlers()
        # The AI business profile is written from the tenant's catalog.
        register_catalog(catalog_sample)
