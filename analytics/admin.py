from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from analytics.models import LimitAudit, LimitNotice, MonthlyReport
from analytics.reports import last_month, report_request
from tenants.downloads import download_url
from tenants.models import Tenant


@admin.register(MonthlyReport)
class MonthlyReportAdmin(admin.ModelAdmin[MonthlyReport]):
    list_display = ("id", "preview", "tenant", "month", "status", "requested_by", "created_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("tenant__slug", "email")
    list_select_related = ("tenant", "requested_by")
    raw_id_fields = ("tenant", "requested_by")
    readonly_fields = ("status", "file", "preview", "error", "finished_at")

    @admin.display(description="first page")
    def preview(self, report: MonthlyReport) -> str:
        """The thumbnail through a short-lived signed link (the file is not public)."""
        if not report.thumbnail:
            return "-"
        link = download_url(kind="report-thumbnail", object_id=report.pk, tenant_id=report.tenant_id, lifetime=3600)
        return format_html('<img src="{}" width="80" alt="first page of report {}">', link, report.pk)


# Registered from here, above tenants, because the report reads orders too.
@admin.action(description="Generate monthly report (last month)")
def generate_monthly_report(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
    month = last_month()
    user = request.user
    for tenant in queryset:
        report_request(tenant=tenant, month=month, email=getattr(user, "email", ""), user_id=user.pk)
    modeladmin.message_user(
        request,
        f"Monthly report for {month:%B %Y} queued for {queryset.count()} tenant(s); the link is e-mailed to you.",
        messages.INFO,
    )


@admin.register(LimitAudit)
class LimitAuditAdmin(admin.ModelAdmin[LimitAudit]):
    """AuditTenantLimits' measurements: a ledger, read only."""

    list_display = ("tenant", "resource", "used", "limit", "ratio", "level", "audited_at")
    list_filter = ("level", "resource", "audited_at")
    search_fields = ("tenant__slug", "tenant__name")
    list_select_related = ("tenant",)
    date_hierarchy = "audited_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LimitAudit | None = None) -> bool:
        return False


@admin.register(LimitNotice)
class LimitNoticeAdmin(admin.ModelAdmin[LimitNotice]):
    """The limit e-mails sent, one per tenant, resource, month and level. Read only;
    deleting one lets the next audit send it again."""

    list_display = ("tenant", "resource", "level", "period", "used", "limit", "created_at")
    list_filter = ("level", "resource", "period")
    search_fields = ("tenant__slug", "tenant__name")
    list_select_related = ("tenant",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LimitNotice | None = None) -> bool:
        return False
