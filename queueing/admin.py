from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join

from queueing.models import AlertEvent, AuditEntry, FailedJob, MetricSnapshot, PurgeRun
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


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Ledgers written by the system (audit trail, alerts, snapshots): an
    operator reads them, nobody edits or deletes them by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Who changed what from the queue dashboard, and when."""

    list_display = ("at", "username", "action", "target", "ip")
    list_filter = ("action", "at")
    search_fields = ("username", "target", "action")
    date_hierarchy = "at"
    list_select_related = ("user",)
    fields = ("at", "user", "username", "action", "target", "formatted_detail", "ip")
    readonly_fields = fields

    @admin.display(description="detail")
    def formatted_detail(self, obj: AuditEntry) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', json.dumps(obj.detail, indent=2))


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "condition", "state", "value", "message")
    list_filter = ("state", "condition", "at")
    search_fields = ("condition", "message")
    date_hierarchy = "at"
    readonly_fields = ("at", "condition", "state", "value", "message")


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "period_start",
        "scope",
        "name",
        "jobs",
        "failed",
        "runtime_p50_ms",
        "runtime_p95_ms",
        "wait_avg_ms",
        "wait_p95_ms",
        "depth",
    )
    list_filter = ("scope", "period_start")
    search_fields = ("name",)
    date_hierarchy = "period_start"
    # The changelist's COUNT over a week of 5-minute rows per queue, job and
    # tenant adds up; the admin's "show all" estimate is enough here.
    show_full_result_count = False
    readonly_fields = (
        "period_start",
        "scope",
        "name",
        "jobs",
        "failed",
        "runtime_avg_ms",
        "runtime_p50_ms",
        "runtime_p95_ms",
        "wait_avg_ms",
        "wait_p95_ms",
        "depth",
    )


@admin.register(PurgeRun)
class PurgeRunAdmin(ReadOnlyAdmin):
    """The retention purge's runs: per kind, how many rows and bytes went (docs/retention.md)."""

    list_display = ("started_at", "trigger", "status", "tenant", "only", "rows", "size", "finished_at")
    list_filter = ("status", "trigger", "started_at")
    date_hierarchy = "started_at"
    readonly_fields = ("started_at", "finished_at", "clock", "trigger", "tenant", "only", "status", "figures", "error")

    @admin.display(description="rows")
    def rows(self, run: PurgeRun) -> str:
        return f"{run.rows:,}"

    @admin.display(description="size")
    def size(self, run: PurgeRun) -> str:
        return filesizeformat(run.total_bytes)

    @admin.display(description="per kind")
    def figures(self, run: PurgeRun) -> str:
        rows = [
            (
                name,
                data.get("skipped") or f"{data.get('rows', 0):,}",
                filesizeformat(data.get("bytes", 0)),
                data.get("files", 0),
                filesizeformat(data.get("file_bytes", 0)),
                data.get("orphans", 0),
                data.get("oldest") or "-",
            )
            for name, data in run.results.items()
        ]
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html(
            "<table><tr><th>kind</th><th>rows</th><th>size</th><th>files</th><th>file size</th>"
            "<th>orphans</th><th>oldest</th></tr>{}</table>",
            body,
        )
