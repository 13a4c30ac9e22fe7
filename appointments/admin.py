"""Operators' pages for bookings: appointments (filters by status, staff,
source and date; cancel from the list), customers, services, staff, opening
hours, calls with their outcome, and provider secrets (set or rotate —
never shown back beyond their last four characters)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from appointments.models import (
    Appointment,
    AppointmentChange,
    Call,
    Customer,
    Notification,
    OpeningHours,
    ProviderSecret,
    Service,
    StaffMember,
)
from appointments.services import appointment_cancel, provider_secret_set


class _ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChangeInline(_ReadOnlyInline):
    model = AppointmentChange
    fields = ("at", "kind", "source", "old_starts_at", "new_starts_at", "note")


class NotificationInline(_ReadOnlyInline):
    model = Notification
    fields = ("kind", "starts_at", "status", "channel", "at", "detail")


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin[Appointment]):
    list_display = ("service_name", "customer_name", "staff", "tenant", "starts_at", "status", "source")
    list_filter = ("status", "source", "staff", ("reminder_sent_at", admin.EmptyFieldListFilter), "starts_at")
    search_fields = ("customer_name", "customer_email", "service_name", "tenant__slug", "external_ids__uid")
    list_select_related = ("tenant", "staff")
    raw_id_fields = ("tenant", "customer", "staff", "service")
    readonly_fields = ("status", "cancelled_at", "cancellation_reason", "reminder_sent_at", "created_at", "updated_at")
    date_hierarchy = "starts_at"
    inlines = [ChangeInline, NotificationInline]
    actions = ["cancel_selected"]

    @admin.action(description="Cancel and notify the customers")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> None:
        cancelled = sum(
            appointment_cancel(appointment=a, source=Appointment.Source.ADMIN, reason="cancelled by an operator")
            for a in queryset.filter(status=Appointment.Status.BOOKED)
        )
        self.message_user(request, f"Cancelled {cancelled} appointment(s); notices queued.", messages.SUCCESS)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin[Customer]):
    list_display = ("name", "email", "phone", "tenant", "created_at")
    search_fields = ("name", "email", "=phone", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin[Service]):
    list_display = ("name", "duration_minutes", "external_id", "active", "tenant")
    list_filter = ("active",)
    search_fields = ("name", "=external_id", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin[StaffMember]):
    list_display = ("name", "email", "external_id", "active", "tenant")
    list_filter = ("active",)
    search_fields = ("name", "email", "=external_id", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    filter_horizontal = ("services",)


@admin.register(OpeningHours)
class OpeningHoursAdmin(admin.ModelAdmin[OpeningHours]):
    list_display = ("tenant", "weekday", "opens", "closes")
    list_filter = ("weekday",)
    search_fields = ("tenant__slug",)
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)


@admin.register(Call)
class CallAdmin(admin.ModelAdmin[Call]):
    list_display = ("call_id", "tenant", "from_number", "outcome", "outcome_detail", "appointment", "created_at")
    list_filter = ("outcome", "call_status", "created_at")
    search_fields = ("=call_id", "from_number", "tenant__slug")
    list_select_related = ("tenant", "appointment")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Call._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ProviderSecretForm(forms.ModelForm):  # type: ignore[type-arg]
    secret = forms.CharField(
        widget=forms.PasswordInput,
        min_length=8,
        help_text="Paste the calendar webhook secret or the voice agent's API key. "
        "Saving rotates: the previous one stays valid for PROVIDER_SECRET_ROTATION_HOURS.",
    )

    class Meta:
        model = ProviderSecret
        fields = ("tenant", "provider")


@admin.register(ProviderSecret)
class ProviderSecretAdmin(admin.ModelAdmin[ProviderSecret]):
    form = ProviderSecretForm
    list_display = ("tenant", "provider", "hint", "created_at", "expires_at")
    list_filter = ("provider",)
    search_fields = ("tenant__slug",)
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)

    def get_readonly_fields(self, request: HttpRequest, obj: ProviderSecret | None = None) -> Any:
        return ("tenant", "provider", "hint", "created_at", "expires_at") if obj is not None else ()

    def get_form(
        self, request: HttpRequest, obj: ProviderSecret | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is not None:  # a stored secret is never edited (or shown): add a new one to rotate
            kwargs["fields"] = ()
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: ProviderSecret, form: Any, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        saved = provider_secret_set(tenant=data["tenant"], provider=data["provider"], secret=data["secret"])
        obj.pk, obj.created_at = saved.pk, saved.created_at
