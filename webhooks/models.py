from __future__ import annotations

from django.db import models


class WebhookEvent(models.Model):
    """A provider's event, stored before anything else happens to it."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (unknown type)"
        FAILED = "failed", "Failed"

    provider = models.CharField(max_length=32)
    # The account a per-account endpoint took the event for (a tenant's id for
    # the calendar and voice endpoints); "" for the platform's own endpoints.
    account = models.CharField(max_length=64, blank=True, default="")
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        # The table was created by `orders` (migrations 0002); the model moved
        # here without a copy: state-only migrations on both sides.
        db_table = "orders_webhookevent"
        constraints = [
            # A provider's retry of the same event is recognised, not processed
            # twice; two accounts' events may share an id (ids are the provider's).
            models.UniqueConstraint(
                fields=["provider", "account", "event_id"], name="webhook_provider_account_event_unique"
            )
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="webhook_status_idx")]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"


# Outbound webhooks' models live in their package; imported here so Django
# registers them with this app.
from webhooks.outbound.models import (  # noqa: E402
    Delivery,
    DeliveryAttempt,
    EndpointSecret,
    OutboundMessage,
    WebhookEndpoint,
)

__all__ = ["Delivery", "DeliveryAttempt", "EndpointSecret", "OutboundMessage", "WebhookEndpoint", "WebhookEvent"]
