from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        # Every heartbeat checks the AI provider too, when AI_BASE_URL sets one.
        from queueing.heartbeat import register_probe
        from tenants.ai import probe

        register_probe("ai", probe)

        # Stripe's invoice and subscription events keep Tenant.subscription_status current.
        from tenants.billing import SUBSCRIPTION_STATUS, stripe_subscription_event
        from webhooks.providers import register_handler

        for event_type in SUBSCRIPTION_STATUS:
            register_handler("stripe", event_type, stripe_subscription_event)

        # GenerateBusinessProfile: an approved tenant gets an AI-written profile.
        # The job module is imported now so jobs queued under its old name find it.
        from outbox.routes import route
        from tenants import profiles  # noqa: F401

        route(
            "tenant.approved",
            "tenants.profiles.handle_tenant_approved",
            formerly=["orders.profiles.handle_tenant_approved"],
        )

        # Tracking hits go with the nightly purge (the privacy purge); a plan may
        # keep any tenant data kind longer or shorter (Plan.retention_days).
        from queueing.retention import Kind, register_kind, register_tenancy
        from tenants.models import Interaction, Tenant
        from tenants.retention import TENANCY

        register_kind(
            Kind(
                "interactions",
                Interaction,
                "occurred_at",
                default_days=395,
                description="tracking hits (pixel views and redirects)",
                tenant_field="tenant_id",
            )
        )
        register_tenancy(TENANCY)

        # Outbound webhooks: the event types tenants' endpoints can subscribe to,
        # and whom to tell when an endpoint is disabled.
        from tenants.event_types import EVENT_TYPES
        from webhooks.outbound.catalog import register_event_type, register_tenant_contact

        for outbound_type in EVENT_TYPES:
            register_event_type(outbound_type)
        register_tenant_contact(
            lambda tenant_id: Tenant.objects.filter(pk=tenant_id).values_list("owner_email", flat=True).first() or ""
        )
