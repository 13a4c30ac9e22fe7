from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """Daily figures per tenant from tracking and orders (their model lives in
    ``tenants``) and the monthly PDF report, which reads across tenants and orders."""

    name = "analytics"

    def ready(self) -> None:
        # Registers the "report" kind of signed download.
        import analytics.reports  # noqa: F401
