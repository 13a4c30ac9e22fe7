from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webhooks.models import WebhookEvent
from webhooks.processing import webhook_reprocess


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin[WebhookEvent]):
    list_display = ("id", "provider", "type", "event_id", "status", "attempts", "received_at", "processed_at")
    list_filter = ("provider", "status", "type")
    search_fields = ("=event_id", "type")
    date_hierarchy = "received_at"
    actions = ["process_again"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Process again")
    def process_again(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        count = webhook_reprocess(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Queued {count} event(s) for processing.", messages.SUCCESS)


# Outbound webhooks' pages (endpoints, deliveries) live with their package.
import webhooks.outbound.admin  # noqa: E402, F401
