"""Tenants, their subscription plans and the people who run them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Plan(models.Model):
    """A subscription tier; its limits are checked by the plan-limit audit."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    max_products = models.PositiveIntegerField()
    max_orders_per_month = models.PositiveIntegerField()
    max_campaign_recipients_per_month = models.PositiveIntegerField()
    max_storage_mb = models.PositiveIntegerField()
    stripe_price_id = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        SUSPENDED = "suspended", "Suspended"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    owner_email = models.EmailField()
    category = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    # The tenant's own subscription to the platform, kept current by Stripe webhooks.
    stripe_customer_id = models.CharField(max_length=64, blank=True, db_index=True)
    subscription_status = models.CharField(max_length=16, blank=True)

    class Meta:
        indexes = [
            # SyncAnalyticsJob walks approved tenants in id order, in chunks.
            models.Index(fields=["status", "id"], name="tenant_status_id_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class TenantMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        STAFF = "staff", "Staff"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="tenant_member_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class BusinessProfile(models.Model):
    """The tenant's public description; AI enhancement fills it in."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="profile")
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    ai_enhanced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Profile of {self.tenant}"
