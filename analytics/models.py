"""Monthly PDF reports (GeneratePdfReportJob). The daily figures they read live
in ``tenants.TenantDailyStats``; the report sits here because it also reads orders."""

from __future__ import annotations

from django.db import models

from tenants.models import Tenant


class MonthlyReport(models.Model):
    """One tenant's month as a PDF. Not unique per tenant and month: asking
    again regenerates (late orders, refunds) into a new row."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="monthly_reports")
    month = models.DateField(help_text="The first day of the month reported on.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True)
    email = models.EmailField(blank=True)
    file = models.FileField(upload_to="reports/", max_length=255, blank=True)
    # The first page as a PNG (GenerateReportThumbnail, on `thumbnails`: `high` in most layouts).
    thumbnail = models.FileField(upload_to="reports/", max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="report_tenant_idx")]

    def __str__(self) -> str:
        return f"Report {self.pk} of {self.tenant_id} for {self.month:%Y-%m} ({self.status})"


class LimitAudit(models.Model):
    """One resource of one tenant measured against its plan by AuditTenantLimits
    (analytics/limits.py): the history of usage, one row per resource per run."""

    class Resource(models.TextChoices):
        PRODUCTS = "products", "Products"
        ORDERS = "orders", "Orders this month"
        RECIPIENTS = "recipients", "Campaign recipients this month"
        STORAGE = "storage", "Storage (bytes)"

    class Level(models.TextChoices):
        OK = "ok", "OK"
        WARNING = "warning", "Warning (≥ 90%)"
        OVER = "over", "Over the limit"

    # The (tenant, audited_at) index serves the per-tenant history, so no separate FK index.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="limit_audits", db_index=False)
    resource = models.CharField(max_length=16, choices=Resource.choices)
    used = models.BigIntegerField()
    limit = models.BigIntegerField()  # storage in bytes, like ``used``
    ratio = models.FloatField(null=True, blank=True)  # None when the plan's limit is 0
    level = models.CharField(max_length=8, choices=Level.choices)
    audited_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "audited_at"], name="limit_audit_tenant_time_idx")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.resource} {self.used}/{self.limit} ({self.level})"


class LimitNotice(models.Model):
    """The claim on one e-mail: the tenant owner hears once per month, resource and
    level. The unique constraint is the claim (two runs at once insert one row);
    the row is deleted again if the e-mail could not be sent."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="limit_notices", db_index=False)
    resource = models.CharField(max_length=16, choices=LimitAudit.Resource.choices)
    period = models.DateField()  # the first day of the month (UTC)
    level = models.CharField(max_length=8, choices=LimitAudit.Level.choices)
    used = models.BigIntegerField()
    limit = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "resource", "period", "level"], name="limit_notice_once_per_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.resource} {self.level} {self.period:%Y-%m}"
