"""Catalog and orders. Money is Decimal; stock changes only through services."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from tenants.models import Tenant


class Product(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="products")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    stock_quantity = models.PositiveIntegerField(default=0)
    image = models.ImageField(upload_to="products/%Y/%m/", blank=True)
    blurhash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sku"], name="product_tenant_sku_unique"),
            # The last line of defence: no code path may oversell.
            models.CheckConstraint(condition=Q(stock_quantity__gte=0), name="product_stock_non_negative"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        PAID = "PAID", "Paid"
        CANCELLED = "CANCELLED", "Cancelled"
        FULFILLED = "FULFILLED", "Fulfilled"
        REFUNDED = "REFUNDED", "Refunded"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="orders")
    number = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    customer_email = models.EmailField()
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="USD")
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    # Set once, when the reserved stock goes back; guards "exactly once".
    stock_restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="order_tenant_number_unique"),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_non_negative"),
        ]
        indexes = [
            # ReleaseStaleOrders: "PENDING orders older than X" (optionally per
            # tenant) reads only the small pending slice, however many orders exist.
            models.Index(
                fields=["created_at", "tenant"],
                condition=Q(status="PENDING"),
                name="order_pending_created_idx",
            ),
            # Exports, reports and analytics: a tenant's orders in a period.
            models.Index(fields=["tenant", "created_at"], name="order_tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.status})"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="order_item_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"


class Payment(models.Model):
    """Money movement reported by a provider; one row per provider reference."""

    class Kind(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=32)
    reference = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    # Amount or currency did not match the order: recorded, order untouched.
    mismatch = models.BooleanField(default=False)
    # Money arrived for an order that was already released (or already paid)
    # and no refund of it is on record: refund it. Cleared when its refund arrives.
    needs_refund = models.BooleanField(default=False)
    # A refund: the reference of the payment it returns (Stripe: the charge's
    # PaymentIntent), so a refund counts for that payment only. Blank while
    # unknown: a Standard Webhooks refund names no payment, and is matched to
    # one (and this filled in) when it or that payment is processed.
    refunded_reference = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "reference", "kind"], name="payment_provider_ref_unique")
        ]
        indexes = [
            models.Index(fields=["needs_refund"], condition=Q(needs_refund=True), name="payment_needs_refund_idx")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.amount} {self.currency} for order {self.order_id}"


class SalesExport(models.Model):
    """A tenant's orders in a date range, as a file (GenerateSalesExport)."""

    class Format(models.TextChoices):
        XLSX = "xlsx", "Excel (XLSX)"
        CSV = "csv", "CSV"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True)
    email = models.EmailField(blank=True)
    date_from = models.DateField()
    date_to = models.DateField()
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.XLSX)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True)  # path in default_storage
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="export_tenant_idx")]

    def __str__(self) -> str:
        return f"Export {self.pk} of {self.tenant_id} ({self.status})"

    @property
    def progress(self) -> float:
        return (
            round(self.rows_done / self.rows_total, 4) if self.rows_total else (1.0 if self.status == "done" else 0.0)
        )
