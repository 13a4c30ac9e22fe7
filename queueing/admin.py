from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from queueing.models import FailedJob
from queueing.services import failed_job_forget, failed_job_retry


@admin.register(FailedJob)
class FailedJobAdmin(admin.ModelAdmin[FailedJob]):
    """The failed-job ledger: read-only, with retry and forget as actions."""

    list_display = ("id", "failed_at", "queue", "job_name", "exception_class", "short_message", "attempts", "tenant_id")
    list_filter = ("queue", "job_name", "exception_class", "failed_at")
    search_fields = ("job_name", "message", "job_id", "exception_class")
    date_hierarchy = "failed_at"
    actions = ["retry", "forget"]
    fields = (
        "job_id",
        "queue",
        "job_name",
        "args",
        "kwargs",
        "attempts",
        "worker",
        "tenant_id",
        "failed_at",
        "exception_class",
        "message",
        "formatted_traceback",
    )
    readonly_fields = fields

    @admin.display(description="message")
    def short_message(self, obj: FailedJob) -> str:
        return (obj.message.splitlines() or [""])[0][:80]

    @admin.display(description="traceback")
    def formatted_traceback(self, obj: FailedJob) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.traceback or "(none)")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: FailedJob | None = None) -> bool:
        return False

    @admin.action(description="Retry selected jobs (fresh attempts)")
    def retry(self, request: HttpRequest, queryset: QuerySet[FailedJob]) -> None:
        new_ids = failed_job_retry(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Dispatched {len(new_ids)} job(s) again.", messages.SUCCESS)

    @admin.action(description="Forget selected jobs")
    def forget(self, request: HttpRequest, queryset: QuerySet[FailedJob]) -> None:
        count = failed_job_forget(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Forgot {count} failed job(s).", messages.SUCCESS)
