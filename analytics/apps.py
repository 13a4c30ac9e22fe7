from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """Daily figures per tenant from tracking and orders (their model lives in
    ``tenants``) and the monthly PDF report, which reads across tenants and orders."""

    name = "analytics"

    def ready(self) -> None:
        from analytics.admin import generate_monthly_report
        from analytics.reports import resolve_report_download
        from tenants.admin import contribute_admin_action
        from tenants.downloads import register_download
        from tenants.models import Tenant

        register_download("report", resolve_report_download)
        contribute_admin_action(Tenant, generate_monthly_report)
