from django.contrib import admin

from orders.models import Order, OrderItem, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    list_display = ("sku", "name", "tenant", "price", "stock_quantity", "created_at")
    list_filter = ("tenant__plan",)
    search_fields = ("sku", "name", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    # Stock moves only through order services; editing it here would bypass them.
    readonly_fields = ("blurhash", "created_at")


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


@admin.register(OrderItem)
class OrderItemAdmin(admin.ModelAdmin[OrderItem]):
    list_display = ("order", "product", "quantity", "unit_price")
    search_fields = ("order__number", "product__sku")
    list_select_related = ("order", "product")
    raw_id_fields = ("order", "product")
