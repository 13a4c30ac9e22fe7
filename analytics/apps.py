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
        from analytics.thumbnails import resolve_thumbnail_download

        register_download("report-thumbnail", resolve_thumbnail_download)
        contribute_admin_action(Tenant, generate_monthly_report)

        # Monthly reports (and their PDFs) and the plan-limit audit history go with the nightly purge.
        from analytics.models import LimitAudit, MonthlyReport
        from analytics.reports import report_still_needed
        from queueing.retention import Kind, register_kind

        register_kind(
            Kind(
                "monthly_reports",
                MonthlyReport,
                "created_at",
                default_days=400,
                description="monthly PDF reports, their files and thumbnails",
                tenant_field="tenant_id",
                still_needed=report_still_needed,
                file_fields=("file", "thumbnail"),
                file_prefix="reports/",
            )
        )
        register_kind(
            Kind(
                "limit_audits",
                LimitAudit,
                "audited_at",
                default_days=400,
                description="plan-limit audit history",
                tenant_field="tenant_id",
            )
        )

        # Outbound webhooks: the finished report, for tenants' endpoints.
        from analytics.event_types import EVENT_TYPES
        from webhooks.outbound.catalog import register_event_type

        for outbound_type in EVENT_TYPES:
            register_event_type(outbound_type)
