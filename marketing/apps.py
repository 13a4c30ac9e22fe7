from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"

    def ready(self) -> None:
        from outbox.routes import route

        # campaign_send publishes it with the campaign's draft → sending change.
        route("campaign.send_requested", "marketing.handlers.campaign_send_requested", queue="default")
        from marketing.jobs import RATE_LIMIT, campaign_rate
        from queueing.middleware import define_rate_limit

        # Campaign e-mails per tenant per minute (CAMPAIGN_RATE_PER_MINUTE).
        define_rate_limit(RATE_LIMIT, campaign_rate)

        # Outbound webhooks: the finished campaign, for tenants' endpoints.
        from marketing.event_types import EVENT_TYPES
        from webhooks.outbound.catalog import register_event_type

        for outbound_type in EVENT_TYPES:
            register_event_type(outbound_type)
