from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html

from outbox.models import InboxEntry, OutboxMessage
from outbox.services import outbox_counts, outbox_mark_dead, outbox_redispatch, outbox_relay_drain, outbox_replay


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("5m", "older than 5 minutes"), ("1h", "older than 1 hour"), ("1d", "older than 1 day")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> QuerySet[OutboxMessage]:
        spans = {"5m": 300, "1h": 3600, "1d": 86400}
        if self.value() in spans:
            cutoff = timezone.now() - timedelta(seconds=spans[self.value() or ""])
            return queryset.filter(created_at__lt=cutoff)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin[OutboxMessage]):
    list_display = (
        "id",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "tenant_id",
        "status",
        "attempts",
        "created_at",
    )
    list_filter = ("status", "event_type", "tenant_id", AgeFilter)
    search_fields = ("=aggregate_id", "=id", "event_type")
    date_hierarchy = "created_at"
    actions = ["replay", "redispatch", "mark_dead"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields if f.name != "payload"] + ["formatted_payload"]
    exclude = ("payload",)
    change_list_template = "admin/outbox/outboxmessage/change_list.html"

    @admin.display(description="payload")
    def formatted_payload(self, obj: OutboxMessage) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False  # pruning is the only way out (outbox_prune)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "outbox_counts": outbox_counts()}
        return super().changelist_view(request, extra_context=extra_context)

    @admin.action(description="Replay (handlers that already ran skip it)")
    def replay(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = outbox_replay(ids=list(queryset.values_list("pk", flat=True)))
        outbox_relay_drain()
        self.message_user(request, f"Replayed {count} message(s).", messages.SUCCESS)

    @admin.action(description="Redispatch (not processed ones)")
    def redispatch(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = outbox_redispatch(ids=list(queryset.values_list("pk", flat=True)))
        outbox_relay_drain()
        self.message_user(request, f"Redispatched {count} message(s).", messages.SUCCESS)

    @admin.action(description="Mark dead")
    def mark_dead(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        user = getattr(request.user, "username", "operator")
        count = sum(
            outbox_mark_dead(message_id=pk, error=f"marked dead by {user}")
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Marked {count} message(s) dead.", messages.WARNING)


@admin.register(InboxEntry)
class InboxEntryAdmin(admin.ModelAdmin[InboxEntry]):
    list_display = ("message_id", "handler", "processed_at")
    list_filter = ("handler",)
    search_fields = ("=message_id", "handler")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: InboxEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: InboxEntry | None = None) -> bool:
        return False  # deleting one would let its handler run again; use outbox_replay --force-handlers
