from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from tenants.models import (
    BusinessProfile,
    ErasureRequest,
    Interaction,
    Plan,
    Tenant,
    TenantDailyStats,
    TenantMember,
    TrackedLink,
)
from tenants.services import tenant_approve

AdminAction = Callable[[Any, HttpRequest, QuerySet[Any]], None]
_contributed: dict[type[Model], list[AdminAction]] = {}


def contribute_admin_action(model: type[Model], action: AdminAction) -> None:
    """An app above ``tenants`` adds an action to a tenants page (from its
    ``AppConfig.ready()``): the monthly report reads orders, so its code cannot live here."""
    _contributed.setdefault(model, []).append(action)


_M = TypeVar("_M", bound=Model)


class _ContributedActions(admin.ModelAdmin[_M]):
    """A model admin that also offers the actions other apps contributed for its model."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        for func in _contributed.get(self.model, []):
            found = self.get_action(func)
            if found is not None:
                actions[found[1]] = found
        return actions


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = (
        "name",
        "slug",
        "max_products",
        "max_orders_per_month",
        "max_campaign_recipients_per_month",
        "max_storage_mb",
        "retention_days",
    )
    search_fields = ("name", "slug")


class TenantMemberInline(admin.TabularInline[TenantMember, Tenant]):
    model = TenantMember
    raw_id_fields = ("user",)
    extra = 0


@admin.register(Tenant)
class TenantAdmin(_ContributedActions[Tenant]):
    list_display = ("name", "slug", "status", "plan", "owner_email", "created_at", "approved_at")
    list_filter = ("status", "plan")
    search_fields = ("name", "slug", "owner_email")
    list_select_related = ("plan",)
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "approved_at")
    inlines = [TenantMemberInline]
    actions = ["approve", "enhance_profile"]

    @admin.action(description="Approve selected tenants")
    def approve(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        approved = sum(tenant_approve(tenant_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"Approved {approved} tenant(s).", messages.SUCCESS)

    @admin.action(description="Enhance profile (AI, in the background)")
    def enhance_profile(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        _enhance(self, request, list(queryset.values_list("pk", flat=True)))


@admin.register(TenantMember)
class TenantMemberAdmin(admin.ModelAdmin[TenantMember]):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email", "tenant__slug", "tenant__name")
    list_select_related = ("user", "tenant")
    raw_id_fields = ("user", "tenant")


@admin.register(BusinessProfile)
class BusinessProfileAdmin(admin.ModelAdmin[BusinessProfile]):
    list_display = ("tenant", "ai_enhanced_at", "updated_at")
    list_filter = (("ai_enhanced_at", admin.EmptyFieldListFilter),)
    search_fields = ("tenant__slug", "tenant__name", "description")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    actions = ["enhance_profile"]

    @admin.action(description="Enhance profile (AI, in the background)")
    def enhance_profile(self, request: HttpRequest, queryset: QuerySet[BusinessProfile]) -> None:
        _enhance(self, request, list(queryset.values_list("tenant_id", flat=True)))


def _enhance(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, tenant_ids: list[int]) -> None:
    from tenants.profiles import enhance_tenant_profile

    enhance_tenant_profile.dispatch_many([(tenant_id,) for tenant_id in tenant_ids])
    modeladmin.message_user(
        request,
        f"Profile enhancement queued for {len(tenant_ids)} tenant(s) (once per tenant per hour).",
        messages.INFO,
    )


@admin.register(TrackedLink)
class TrackedLinkAdmin(admin.ModelAdmin[TrackedLink]):
    list_display = ("code", "tenant", "destination", "created_at")
    search_fields = ("code", "destination", "tenant__slug", "tenant__name")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    readonly_fields = ("created_at",)


class _ReadOnly:
    """Rows written by jobs only: operators look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TenantDailyStats)
class TenantDailyStatsAdmin(_ReadOnly, admin.ModelAdmin[TenantDailyStats]):
    list_display = ("date", "tenant", "views", "unique_visitors", "redirects", "orders", "revenue", "updated_at")
    list_filter = ("date",)
    search_fields = ("tenant__slug", "tenant__name")
    list_select_related = ("tenant",)
    date_hierarchy = "date"
    ordering = ("-date", "tenant_id")


@admin.register(Interaction)
class InteractionAdmin(_ReadOnly, admin.ModelAdmin[Interaction]):
    list_display = ("occurred_at", "tenant", "kind", "code", "visitor", "utm_source", "utm_campaign")
    list_filter = ("kind",)
    # Exact matches only: a LIKE over millions of rows would time the page out.
    search_fields = ("=tenant__slug", "=code", "=visitor")
    list_select_related = ("tenant",)
    ordering = ("-id",)
    show_full_result_count = False  # a count(*) over the whole table on every page load is slow


@admin.register(ErasureRequest)
class ErasureRequestAdmin(_ReadOnly, admin.ModelAdmin[ErasureRequest]):
    """Tenants' requests to erase one visitor's tracking hits (POST /api/privacy/erase/)."""

    list_display = ("created_at", "tenant", "visitor", "status", "erased", "finished_at", "requested_by")
    list_filter = ("status",)
    search_fields = ("=tenant__slug", "=visitor")
    list_select_related = ("tenant", "requested_by")
