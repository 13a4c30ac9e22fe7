from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"

    def ready(self) -> None:
        from outbox.routes import route

        # campaign_send publishes it with the campaign's draft → sending change.
        route("campaign.send_requested", "marketing.handlers.campaign_send_requested", queue="default")
