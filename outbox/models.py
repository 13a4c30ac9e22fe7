"""The transactional outbox and its inbox.

A message is written in the same transaction as the change that causes it;
the relay moves committed messages onto the queues; each handler records its
delivery in the inbox *in the transaction of its effect*, so a message
delivered twice has its effect once.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DISPATCHED = "dispatched", "Dispatched"
        PROCESSED = "processed", "Processed"
        DEAD = "dead", "Dead"
        # No route was registered when the relay met it; `outbox_replay` delivers
        # it later (e.g. after deploying the handler).
        SKIPPED = "skipped", "Skipped (no handler)"

    id = models.BigAutoField(primary_key=True)
    event_type = models.CharField(max_length=100)
    aggregate_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=64)
    # No foreign key: the outbox sits below the domain apps.
    tenant_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)  # dispatches so far
    dispatched_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True)  # RQ job id of the last dispatch (first handler)

    class Meta:
        indexes = [
            # The relay's claim: pending and due, oldest first. Partial, so it
            # holds only the (small) pending slice however large the table.
            models.Index(fields=["available_at", "id"], condition=Q(status="pending"), name="outbox_pending_idx"),
            # The coroner: dispatched long ago and still not processed.
            models.Index(fields=["dispatched_at"], condition=Q(status="dispatched"), name="outbox_dispatched_idx"),
            # Pruning: processed before a cutoff.
            models.Index(fields=["processed_at"], condition=Q(status="processed"), name="outbox_processed_idx"),
            models.Index(fields=["aggregate_type", "aggregate_id"], name="outbox_aggregate_idx"),
            models.Index(fields=["event_type", "created_at"], name="outbox_event_idx"),
            models.Index(fields=["tenant_id", "created_at"], name="outbox_tenant_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event_type} {self.aggregate_type}:{self.aggregate_id} ({self.status})"


class InboxEntry(models.Model):
    """One handler's delivery of one message: the de-duplication record."""

    id = models.BigAutoField(primary_key=True)
    message_id = models.BigIntegerField()
    handler = models.CharField(max_length=255)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message_id", "handler"], name="inbox_message_handler_unique")]
        verbose_name_plural = "inbox entries"

    def __str__(self) -> str:
        return f"message {self.message_id} → {self.handler}"
