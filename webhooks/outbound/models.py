"""Outbound webhooks' rows: an endpoint (a tenant's URL) with its signing
secrets; a message (one event, as the tenant sees it); a delivery (that
message to one endpoint, with its retry state); an attempt (one HTTP call).

Tenants are referenced by id, with no foreign key: this app sits below the
domain apps (DESIGN.md), as the outbox does.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class WebhookEndpoint(models.Model):
    tenant_id = models.BigIntegerField(db_index=True)
    url = models.URLField(max_length=1000)
    description = models.CharField(max_length=200, blank=True)
    # Event types this endpoint wants; empty: every type.
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt of the current run of failures (cleared by a
    # success): WEBHOOK_DISABLE_AFTER_DAYS after it, the endpoint is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    owner_notified_at = models.DateTimeField(null=True, blank=True)  # the disable e-mail, sent once
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class EndpointSecret(models.Model):
    """A signing secret (``whsec_…``), encrypted at rest (lib.secretbox).

    The newest is current; a rotated one keeps signing beside it until
    ``expires_at``, so receivers can switch keys without losing a delivery."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="secrets")
    encrypted = models.TextField()
    hint = models.CharField(max_length=8)  # the last characters, to tell secrets apart
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"whsec_…{self.hint}"


class OutboundMessage(models.Model):
    """One event for one tenant, as delivered: ``msg_id`` is the ``webhook-id``
    header, the same on every attempt and resend (receivers de-duplicate on it)."""

    msg_id = models.CharField(max_length=64, unique=True)
    tenant_id = models.BigIntegerField()
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()  # the envelope: {"type", "timestamp", "version", "data"}
    # The outbox message it came from (None for batched types such as link.scanned).
    source_id = models.BigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant_id", "created_at"], name="outbound_msg_tenant_idx")]

    def __str__(self) -> str:
        return f"{self.msg_id} {self.event_type}"


class Delivery(models.Model):
    """A message to one endpoint: pending until an attempt succeeds or the
    retry schedule runs out."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)  # of the current schedule (a resend starts a new one)
    # Due time while pending; a claimed delivery's is pushed past the attempt's
    # longest duration (a lease), so a sender that dies leaves it due again.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "endpoint"], name="outbound_delivery_unique"),
        ]
        indexes = [
            # The senders' claim and the sweeper: due and pending, per endpoint.
            models.Index(
                fields=["endpoint", "next_attempt_at", "id"],
                condition=Q(status="pending"),
                name="outbound_delivery_due_idx",
            ),
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="outbound_delivery_next_idx"),
            models.Index(fields=["endpoint", "status", "created_at"], name="outbound_delivery_log_idx"),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.message_id} → endpoint {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)  # None: no response (timeout, refused)
    duration_ms = models.PositiveIntegerField(default=0)
    response = models.TextField(blank=True)  # the first 1 KB of the body
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["at"], name="outbound_attempt_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
