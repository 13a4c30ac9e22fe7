"""Tenant API for bookings: appointments (list with filters, book — 409 on a
taken slot —, cancel, reschedule), customers, services and staff. Every
query is scoped to the request's tenant: another tenant's id is a 404.
docs/appointments.md, docs/endpoints.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from appointments.models import Appointment, Customer, Service, StaffMember
from appointments.serializers import (
    AppointmentSerializer,
    BookSerializer,
    CancelSerializer,
    CustomerSerializer,
    RescheduleSerializer,
    ServiceSerializer,
    StaffSerializer,
)
from appointments.services import (
    NotLive,
    OutsideHours,
    SlotTaken,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    within_opening_hours,
)
from tenants.api import tenant_for
from tenants.models import Tenant
from tenants.schema import ERROR_DETAIL, VALIDATION_ERRORS, tenant_responses

# ---- views --------------------------------------------------------------------------------


class _Scoped(generics.GenericAPIView):  # type: ignore[type-arg]
    """Lists and details of the request tenant's rows only (another tenant's id is a 404)."""

    model: type[Any]

    def tenant(self) -> Tenant:
        if not hasattr(self.request, "_vito_tenant"):
            self.request._vito_tenant = tenant_for(self.request)  # type: ignore[attr-defined]
        return self.request._vito_tenant  # type: ignore[attr-defined, no-any-return]

    def get_queryset(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] = self.model.objects.filter(tenant=self.tenant()).order_by("pk")
        return queryset

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "tenant": self.tenant()}

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        serializer.save(tenant=self.tenant())


def _documented(view: Any) -> Any:
    """Every operation's answers in the schema, 400s and the tenant API's own included."""
    serializer = view.serializer_class
    errors = {400: VALIDATION_ERRORS}
    operations = {
        "get": extend_schema(
            responses=tenant_responses({200: serializer(many=issubclass(view, generics.ListAPIView))})
        ),
        "post": extend_schema(responses=tenant_responses({201: serializer, **errors})),
        "put": extend_schema(responses=tenant_responses({200: serializer, **errors})),
        "patch": extend_schema(responses=tenant_responses({200: serializer, **errors})),
    }
    return extend_schema_view(**{m: d for m, d in operations.items() if hasattr(view, m)})(view)


@_documented
class CustomerListView(_Scoped, generics.ListCreateAPIView):  # type: ignore[type-arg]
    """``GET/POST /api/customers/``: the phone number is stored in E.164, one customer per number."""

    model, serializer_class = Customer, CustomerSerializer


@_documented
class CustomerDetailView(_Scoped, generics.RetrieveUpdateAPIView):  # type: ignore[type-arg]
    """``GET/PUT/PATCH /api/customers/<id>/``."""

    model, serializer_class = Customer, CustomerSerializer


@_documented
class ServiceListView(_Scoped, generics.ListCreateAPIView):  # type: ignore[type-arg]
    """``GET/POST /api/services/``: what can be booked, and for how long."""

    model, serializer_class = Service, ServiceSerializer


@_documented
class ServiceDetailView(_Scoped, generics.RetrieveUpdateAPIView):  # type: ignore[type-arg]
    """``GET/PUT/PATCH /api/services/<id>/``."""

    model, serializer_class = Service, ServiceSerializer


@_documented
class StaffListView(_Scoped, generics.ListCreateAPIView):  # type: ignore[type-arg]
    """``GET/POST /api/staff/``: who is booked, and the services each offers."""

    model, serializer_class = StaffMember, StaffSerializer


@_documented
class StaffDetailView(_Scoped, generics.RetrieveUpdateAPIView):  # type: ignore[type-arg]
    """``GET/PUT/PATCH /api/staff/<id>/``."""

    model, serializer_class = StaffMember, StaffSerializer


_FILTERS = [
    OpenApiParameter("status", OpenApiTypes.STR, enum=Appointment.Status.values),
    OpenApiParameter("source", OpenApiTypes.STR, enum=Appointment.Source.values),
    OpenApiParameter("staff", OpenApiTypes.INT),
    OpenApiParameter("service", OpenApiTypes.INT),
    OpenApiParameter("customer", OpenApiTypes.INT),
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Appointments starting at or after this time."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Appointments starting before this time."),
]


def _filtered(queryset: QuerySet[Appointment], params: Any) -> QuerySet[Appointment]:
    errors: dict[str, list[str]] = {}
    for name, choices in (("status", Appointment.Status.values), ("source", Appointment.Source.values)):
        value = params.get(name)
        if value is not None:
            if value in choices:
                queryset = queryset.filter(**{name: value})
            else:
                errors[name] = [f"must be one of {', '.join(choices)}"]
    for name in ("staff", "service", "customer"):
        value = params.get(name)
        if value is not None:
            if value.isdigit():
                queryset = queryset.filter(**{f"{name}_id": int(value)})
            else:
                errors[name] = ["must be an id (a whole number)"]
    for name, lookup in (("from", "starts_at__gte"), ("to", "starts_at__lt")):
        value = params.get(name)
        if value is not None:
            when = parse_datetime(value)
            if when is None or when.tzinfo is None:
                errors[name] = ["must be an ISO 8601 time with a UTC offset, e.g. 2026-12-24T09:00:00Z"]
            else:
                queryset = queryset.filter(**{lookup: when})
    if errors:
        raise ValidationError(errors)
    return queryset


def _conflict(exc: Exception) -> Response:
    return Response({"detail": str(exc), "reason": getattr(exc, "reason", "conflict")}, status=status.HTTP_409_CONFLICT)


class AppointmentListView(_Scoped, generics.ListAPIView):  # type: ignore[type-arg]
    """``GET /api/appointments/`` (filters: status, source, staff, service,
    customer, from, to); ``POST`` books a slot — 409 when it is taken."""

    model = Appointment
    serializer_class = AppointmentSerializer

    def get_queryset(self) -> QuerySet[Appointment]:
        queryset = Appointment.objects.filter(tenant=self.tenant()).order_by("starts_at", "pk")
        return _filtered(queryset, self.request.query_params)

    @extend_schema(
        summary="List appointments",
        parameters=_FILTERS,
        responses=tenant_responses({200: AppointmentSerializer(many=True), 400: VALIDATION_ERRORS}),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Book an appointment",
        request=BookSerializer,
        responses=tenant_responses({201: AppointmentSerializer, 400: VALIDATION_ERRORS, 409: ERROR_DETAIL}),
    )
    def post(self, request: Request) -> Response:
        tenant = self.tenant()
        serializer = BookSerializer(data=request.data, context={"tenant": tenant})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer: Customer = data["customer"]
        try:
            appointment = appointment_book(
                tenant_id=tenant.pk,
                customer=customer,
                customer_name=customer.name or customer.email or customer.phone,
                customer_email=customer.email,
                service=data["service"],
                service_name=data["service"].name,
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                staff=data.get("staff"),
                source=Appointment.Source.API,
            )
        except OutsideHours as exc:
            raise ValidationError({"starts_at": [str(exc)]}) from None
        except SlotTaken as exc:
            return _conflict(exc)
        return Response(AppointmentSerializer(appointment).data, status=status.HTTP_201_CREATED)


class AppointmentDetailView(_Scoped, generics.RetrieveAPIView):  # type: ignore[type-arg]
    """``GET /api/appointments/<id>/``."""

    model = Appointment
    serializer_class = AppointmentSerializer

    @extend_schema(responses=tenant_responses({200: AppointmentSerializer}))
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class AppointmentCancelView(_Scoped):
    """``POST /api/appointments/<id>/cancel/`` (``reason`` optional): cancels and
    notifies the customer; cancelling a cancelled appointment is a 409."""

    model = Appointment
    serializer_class = CancelSerializer  # what OPTIONS describes (DRF's metadata asks for one)

    @extend_schema(
        request=CancelSerializer,
        responses=tenant_responses({200: AppointmentSerializer, 400: VALIDATION_ERRORS, 409: ERROR_DETAIL}),
    )
    def post(self, request: Request, pk: int) -> Response:
        appointment = get_object_or_404(self.get_queryset(), pk=pk)
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not appointment_cancel(
            appointment=appointment, source=Appointment.Source.API, reason=serializer.validated_data["reason"]
        ):
            return _conflict(NotLive(f"appointment {appointment.pk} is already cancelled"))
        appointment.refresh_from_db()
        return Response(AppointmentSerializer(appointment).data)


class AppointmentRescheduleView(_Scoped):
    """``POST /api/appointments/<id>/reschedule/``: moves it (same staff member);
    409 when that person is busy then or the appointment is not booked."""

    model = Appointment
    serializer_class = RescheduleSerializer  # what OPTIONS describes

    @extend_schema(
        request=RescheduleSerializer,
        responses=tenant_responses({200: AppointmentSerializer, 400: VALIDATION_ERRORS, 409: ERROR_DETAIL}),
    )
    def post(self, request: Request, pk: int) -> Response:
        appointment = get_object_or_404(self.get_queryset(), pk=pk)
        serializer = RescheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        starts_at: datetime = serializer.validated_data["starts_at"]
        ends_at: datetime = serializer.validated_data.get("ends_at") or starts_at + (
            appointment.ends_at - appointment.starts_at
        )
        if ends_at <= starts_at:
            raise ValidationError({"ends_at": ["must be after starts_at"]})
        if not within_opening_hours(tenant_id=appointment.tenant_id, starts_at=starts_at, ends_at=ends_at):
            raise ValidationError({"starts_at": [f"{starts_at:%a %Y-%m-%d %H:%M} UTC is outside opening hours"]})
        try:
            moved = appointment_reschedule(
                appointment=appointment, starts_at=starts_at, ends_at=ends_at, source=Appointment.Source.API
            )
        except (SlotTaken, NotLive) as exc:
            return _conflict(exc)
        return Response(AppointmentSerializer(moved).data)
