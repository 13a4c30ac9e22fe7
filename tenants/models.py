"""Tenants, their subscription plans and the people who run them."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q


class Plan(models.Model):
    """A subscription tier; its limits are checked by the plan-limit audit."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    max_products = models.PositiveIntegerField()
    max_orders_per_month = models.PositiveIntegerField()
    max_campaign_recipients_per_month = models.PositiveIntegerField()
    max_storage_mb = models.PositiveIntegerField()
    stripe_price_id = models.CharField(max_length=100, blank=True)
    # Days this plan keeps a kind of its tenants' data, over RETENTION_DAYS:
    # {"interactions": 730}. Checked against the registered kinds (tenants/retention.py).
    retention_days = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from tenants.retention import validate_plan_retention

        validate_plan_retention(self.retention_days)


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


class TrackedLink(models.Model):
    """A short link a tenant shares: ``/t/<tenant>/r/<code>`` redirects to ``destination``.

    The destination is stored by the tenant and checked here (http/https only, also
    as a database constraint): the redirect never goes to a URL taken from the request.
    """

    # The unique (tenant, code) index serves every lookup, so no separate FK index.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tracked_links", db_index=False)
    code = models.SlugField(max_length=64, db_index=False)  # the unique (tenant, code) index covers it
    destination = models.URLField(max_length=2000, validators=[URLValidator(schemes=["http", "https"])])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="tracked_link_tenant_code_unique"),
            models.CheckConstraint(
                condition=Q(destination__startswith="http://") | Q(destination__startswith="https://"),
                name="tracked_link_http_destination",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} → {self.destination}"


class Interaction(models.Model):
    """One pixel view or redirect, written in batches by RecordInteraction from the
    Redis buffer (tenants/tracking.py). No raw IP: ``visitor`` is a salted hash."""

    class Kind(models.TextChoices):
        VIEW = "view", "Pixel view"
        REDIRECT = "redirect", "Redirect"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    code = models.CharField(max_length=64, blank=True)  # the TrackedLink code of a redirect
    # HMAC of IP + user agent under a random salt that exists for one day (docs/tracking.md
    # "Tracking and analytics"): distinct per day, unlinkable across days.
    visitor = models.CharField(max_length=16)
    occurred_at = models.DateTimeField()
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    # The hit's Redis stream entry id: a batch inserted again after a crash
    # (before its acknowledgement) conflicts here and is skipped, not counted twice.
    hit_id = models.CharField(max_length=32, unique=True)

    class Meta:
        indexes = [
            # SyncTenantAnalytics: one tenant's interactions in one day.
            models.Index(fields=["tenant", "occurred_at"], name="interaction_tenant_time_idx"),
            # link.scanned: one tenant's redirects after its cursor, in id order
            # (tenants/tracking/scans.py), without walking other tenants' hits.
            models.Index(fields=["tenant", "id"], condition=Q(kind="redirect"), name="interaction_redirect_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.tenant_id} {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class LinkScanCursor(models.Model):
    """How far a tenant's ``link.scanned`` webhooks have got: the last
    ``Interaction`` id published. Moved in the transaction that publishes the
    scans up to it (tenants/tracking/scans.py), so none is published twice."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"link scans of {self.tenant_id} up to {self.last_id}"


class TenantDailyStats(models.Model):
    """One tenant's figures for one day, upserted by SyncTenantAnalytics (idempotent)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="daily_stats", db_index=False)
    date = models.DateField()
    views = models.PositiveIntegerField(default=0)
    unique_visitors = models.PositiveIntegerField(default=0)
    redirects = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tenant daily stats"
        constraints = [models.UniqueConstraint(fields=["tenant", "date"], name="tenant_daily_stats_unique")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.date}"


class ErasureRequest(models.Model):
    """A tenant's request to erase every tracking hit of one visitor hash
    (``POST /api/privacy/erase/``), carried out by a job; ``erased`` counts the rows."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        DONE = "done", "Done"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="erasure_requests")
    visitor = models.CharField(max_length=16)
    requested_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    erased = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="erasure_tenant_idx")]

    def __str__(self) -> str:
        return f"erase {self.visitor} of {self.tenant_id} ({self.status})"
