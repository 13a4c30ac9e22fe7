from __future__ import annotations

from django.db import models
from django.db.models import Q

from tenants.models import Tenant


class Subscriber(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="subscribers")
    email = models.EmailField()
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "email"], name="subscriber_tenant_email_unique")]
        indexes = [
            # Campaign fan-out iterates a tenant's active subscribers by id.
            models.Index(
                fields=["tenant", "id"], condition=Q(unsubscribed_at__isnull=True), name="subscriber_active_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.email


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="campaigns")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.subject


class CampaignDelivery(models.Model):
    """One recipient of one campaign: the unit of per-recipient retry."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"  # claimed by one job (claimed_by); back to pending if its attempt fails
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The RQ job id holding the claim, and since when: only that job (its retries
    # included) may send, so a duplicate job for the same delivery is a no-op.
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "campaign deliveries"
        constraints = [
            # A recipient gets a campaign once, however often fan-out is retried.
            models.UniqueConstraint(fields=["campaign", "subscriber"], name="delivery_campaign_subscriber_unique")
        ]
        indexes = [models.Index(fields=["campaign", "status"], name="delivery_campaign_status_idx")]

    def __str__(self) -> str:
        return f"{self.campaign_id} → {self.subscriber_id} ({self.status})"
