"""The bookings API's serializers: customers (phone in E.164, one customer per
number), services and staff (calendar ids unique per tenant), appointments and
the book / cancel / reschedule requests. Every reference is checked against
the request's tenant (``context["tenant"]``). Views: appointments/api.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from appointments.models import Appointment, Customer, Service, StaffMember
from appointments.phones import InvalidPhone, normalise_phone
from tenants.models import Tenant


@extend_schema_field({"type": "string", "description": "An e-mail address, or empty when unknown."})
class _OptionalEmail(serializers.EmailField):
    """An e-mail address that may be blank: documented as a plain string, since
    OpenAPI's ``format: email`` would call the empty value invalid."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"allow_blank": True, "required": False, **kwargs})


class _TenantScoped(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """An id of one of the request tenant's rows; another tenant's id is "does not exist"."""

    def get_queryset(self) -> QuerySet[Any]:
        tenant: Tenant = self.context["tenant"]
        return self.queryset.filter(tenant=tenant)  # type: ignore[union-attr]


class CustomerSerializer(serializers.ModelSerializer[Customer]):
    email = _OptionalEmail()

    class Meta:
        model = Customer
        fields = ["id", "name", "email", "phone", "created_at"]
        read_only_fields = ["created_at"]

    def validate_phone(self, value: str) -> str:
        if not value:
            return ""
        try:
            phone = normalise_phone(value)
        except InvalidPhone as exc:
            raise ValidationError(str(exc)) from None
        taken = Customer.objects.filter(tenant=self.context["tenant"], phone=phone)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(f"customer {taken.values_list('pk', flat=True)[0]} already has {phone}")
        return phone


class _UniqueExternalId:
    """The calendar's id of a service or staff member is unique per tenant (a
    conditional constraint DRF does not turn into a validator, and ``tenant``
    is not a field): a taken id is a 400, not an IntegrityError."""

    instance: Any
    context: dict[str, Any]

    def validate_external_id(self, value: str) -> str:
        if not value:
            return ""
        model = self.Meta.model  # type: ignore[attr-defined]
        taken = model.objects.filter(tenant=self.context["tenant"], external_id=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(f"{model._meta.verbose_name} {taken.values_list('pk', flat=True)[0]} has this id")
        return value


class ServiceSerializer(_UniqueExternalId, serializers.ModelSerializer[Service]):
    class Meta:
        model = Service
        fields = ["id", "name", "duration_minutes", "external_id", "active"]

    def validate_duration_minutes(self, value: int) -> int:
        if value < 1:
            raise ValidationError("must be at least 1 minute")
        return value


class StaffSerializer(_UniqueExternalId, serializers.ModelSerializer[StaffMember]):
    email = _OptionalEmail()
    services = _TenantScoped(many=True, queryset=Service.objects.all(), required=False)

    class Meta:
        model = StaffMember
        fields = ["id", "name", "email", "external_id", "active", "services"]


class AppointmentSerializer(serializers.ModelSerializer[Appointment]):
    customer_email = _OptionalEmail(read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "status",
            "source",
            "customer",
            "customer_name",
            "customer_email",
            "service",
            "service_name",
            "staff",
            "starts_at",
            "ends_at",
            "cancelled_at",
            "cancellation_reason",
            "reminder_sent_at",
            "created_at",
        ]
        read_only_fields = fields


class BookSerializer(serializers.Serializer[dict[str, Any]]):
    customer = _TenantScoped(queryset=Customer.objects.all())
    service = _TenantScoped(queryset=Service.objects.all())
    staff = _TenantScoped(
        queryset=StaffMember.objects.all(),
        required=False,
        allow_null=True,
        help_text="Omit to give it to the first free staff member offering the service.",
    )
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(required=False, help_text="Defaults to the start plus the service's duration.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("ends_at", attrs["starts_at"] + timedelta(minutes=attrs["service"].duration_minutes))
        if attrs["ends_at"] <= attrs["starts_at"]:
            raise ValidationError({"ends_at": ["must be after starts_at"]})
        return attrs


class CancelSerializer(serializers.Serializer[dict[str, Any]]):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RescheduleSerializer(serializers.Serializer[dict[str, Any]]):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(required=False, help_text="Defaults to keeping the appointment's length.")
