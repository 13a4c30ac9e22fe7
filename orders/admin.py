from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.models import Order, OrderItem, Payment, Product, SalesExport
from tenants.models import Tenant


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    list_display = ("sku", "name", "tenant", "price", "stock_quantity", "created_at")
    list_filter = ("tenant__plan",)
    search_fields = ("sku", "name", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    readonly_fields = ("blurhash", "created_at")

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "image" in form.changed_data and obj.image:
            # The upload returns at once; the placeholder is computed in the background.
            from orders.jobs import generate_product_blurhash

            Product.objects.filter(pk=obj.pk).update(blurhash="")
            generate_product_blurhash.dispatch(obj.tenant_id, obj.pk)


class OrderItemInline(admin.TabularInline[OrderItem, Order]):
    model = OrderItem
    raw_id_fields = ("product",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin[Order]):
    list_display = ("number", "tenant", "status", "customer_email", "total", "currency", "created_at", "paid_at")
    list_filter = ("status", "currency", "created_at")
    search_fields = ("number", "customer_email", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    date_hierarchy = "created_at"
    readonly_fields = ("status", "total", "paid_at", "cancelled_at", "cancel_reason", "stock_restored_at")
    inlines = [OrderItemInline]
    actions = ["export_sales"]

    @admin.action(description="Export these orders' tenants' sales (last 30 days, XLSX)")
    def export_sales(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from orders.exports import export_request

        today = timezone.localdate()
        tenants = Tenant.objects.filter(pk__in=queryset.values("tenant_id").distinct())
        for tenant in tenants:
            export_request(
                tenant=tenant,
                date_from=today - timedelta(days=30),
                date_to=today,
                email=getattr(request.user, "email", ""),
                user_id=request.user.pk,
            )
        self.message_user(request, f"Queued {len(tenants)} export(s); progress under Sales exports.", messages.SUCCESS)


@admin.register(OrderItem)
class OrderItemAdmin(admin.ModelAdmin[OrderItem]):
    list_display = ("order", "product", "quantity", "unit_price")
    search_fields = ("order__number", "product__sku")
    list_select_related = ("order", "product")
    raw_id_fields = ("order", "product")


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin[Payment]):
    list_display = ("order", "provider", "kind", "amount", "currency", "mismatch", "needs_refund", "created_at")
    list_filter = ("provider", "kind", "mismatch", "needs_refund")
    search_fields = ("reference", "order__number")
    list_select_related = ("order",)
    raw_id_fields = ("order",)
    readonly_fields = (
        "order",
        "provider",
        "reference",
        "kind",
        "amount",
        "currency",
        "mismatch",
        "refunded_reference",
        "created_at",
    )


@admin.register(SalesExport)
class SalesExportAdmin(admin.ModelAdmin[SalesExport]):
    list_display = ("id", "tenant", "date_from", "date_to", "format", "status", "rows_done", "rows_total", "created_at")
    list_filter = ("status", "format")
    search_fields = ("tenant__slug", "email")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant", "requested_by")
    readonly_fields = ("status", "rows_done", "rows_total", "file", "error", "finished_at")
