"""Admin pages for outbound webhooks: endpoints (add, enable/disable, rotate
the secret, recover failures) and deliveries with their attempt log (resend).
Every change goes through webhooks.outbound.services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from webhooks.outbound import services
from webhooks.outbound.addresses import ForbiddenURL
from webhooks.outbound.models import Delivery, DeliveryAttempt, EndpointSecret, WebhookEndpoint


class SecretInline(admin.TabularInline[EndpointSecret, WebhookEndpoint]):
    model = EndpointSecret
    fields = ("hint", "created_at", "expires_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin[WebhookEndpoint]):
    list_display = ("id", "tenant_id", "url", "enabled", "failing_since", "disabled_reason", "created_at")
    list_filter = ("enabled",)
    search_fields = ("url", "=tenant_id", "description")
    fields = ("tenant_id", "url", "description", "event_types", "enabled", "disabled_reason", "failing_since")
    readonly_fields = ("enabled", "disabled_reason", "failing_since")
    inlines = [SecretInline]
    actions = ["enable", "disable", "rotate_secret", "recover_last_five_days"]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: ModelForm[Any], change: bool) -> None:
        try:
            if change:
                services.endpoint_update(obj, url=obj.url, event_types=obj.event_types, description=obj.description)
                return
            endpoint, secret = services.endpoint_create(
                tenant_id=obj.tenant_id, url=obj.url, event_types=obj.event_types, description=obj.description
            )
        except (ForbiddenURL, services.UnknownEventType) as exc:
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)
            return
        obj.pk = endpoint.pk
        self.message_user(request, f"Signing secret (shown once, give it to the tenant): {secret}", messages.WARNING)

    @admin.action(description="Enable")
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.endpoint_enable(endpoint)
        self.message_user(request, f"Enabled {queryset.count()} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Disable (pending deliveries fail; recover sends them later)")
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        done = sum(services.endpoint_disable(e.pk, reason=f"disabled by {request.user}") for e in queryset)
        self.message_user(request, f"Disabled {done} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Rotate the signing secret (the old one signs for 24 h more)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            secret = services.endpoint_rotate_secret(endpoint)
            self.message_user(request, f"{endpoint}: new secret (shown once): {secret}", messages.WARNING)

    @admin.action(description="Recover the messages that failed in the last 5 days")
    def recover_last_five_days(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        since = timezone.now() - timedelta(days=5)
        for endpoint in queryset:
            try:
                count = services.deliveries_recover(endpoint, since=since)
            except services.EndpointDisabled as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, f"{endpoint}: {count} message(s) queued again.", messages.SUCCESS)


class AttemptInline(admin.TabularInline[DeliveryAttempt, Delivery]):
    model = DeliveryAttempt
    fields = ("at", "status_code", "duration_ms", "succeeded", "error", "response")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin[Delivery]):
    list_display = ("id", "message", "endpoint", "status", "attempts", "next_attempt_at", "created_at")
    list_filter = ("status", "message__event_type")
    search_fields = ("=message__msg_id", "=endpoint__id")
    date_hierarchy = "created_at"
    list_select_related = ("message", "endpoint")
    readonly_fields = ("message", "endpoint", "status", "attempts", "next_attempt_at", "last_attempt_at", "created_at")
    inlines = [AttemptInline]
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resend (a fresh retry schedule, same webhook-id)")
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = 0
        for delivery in queryset.select_related("message", "endpoint"):
            try:
                count += services.delivery_resend(delivery.endpoint, msg_id=delivery.message.msg_id)
            except services.EndpointDisabled as exc:
                self.message_user(request, str(exc), messages.ERROR)
        self.message_user(request, f"Queued {count} deliver(ies) again.", messages.SUCCESS)
