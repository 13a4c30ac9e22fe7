"""Booking, cancelling and moving appointments — every entry point (calendar,
voice agent, API, admin) comes through here. Availability is checked by
query to pick a staff member, and guaranteed by the exclusion constraint:
of two concurrent bookings of one slot, PostgreSQL refuses the second."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

import outbox
from appointments.models import (
    Appointment,
    AppointmentChange,
    Customer,
    ExternalBooking,
    OpeningHours,
    Service,
    StaffMember,
)

NOTIFY_EVENT = "appointment.notify"
EXCLUSION_VIOLATION = "23P01"  # PostgreSQL's SQLSTATE for a refused overlapping row


class Unavailable(Exception):
    """The booking cannot be made; ``reason`` is a Call.Outcome-style code."""

    reason = "unavailable"


class SlotTaken(Unavailable):
    reason = "slot_taken"


class OutsideHours(Unavailable):
    reason = "outside_hours"


class NotLive(Unavailable):
    """The appointment is cancelled (or over): it cannot be moved."""

    reason = "not_live"


def _exclusion_violation(exc: IntegrityError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == EXCLUSION_VIOLATION


def within_opening_hours(*, tenant_id: int, starts_at: datetime, ends_at: datetime) -> bool:
    """Inside one of the tenant's opening-hours rows (UTC) on that weekday; a
    tenant with none takes any time. An appointment must not span midnight."""
    hours = list(OpeningHours.objects.filter(tenant_id=tenant_id).values_list("weekday", "opens", "closes"))
    if not hours:
        return True
    start, end = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    if start.date() != end.date() and end.time() != datetime.min.time():
        return False
    end_time = end.time() if start.date() == end.date() else datetime.max.time()
    return any(
        weekday == start.weekday() and opens <= start.time() and end_time <= closes for weekday, opens, closes in hours
    )


def staff_free(*, staff: QuerySet[StaffMember], starts_at: datetime, ends_at: datetime) -> QuerySet[StaffMember]:
    """Of ``staff``, those with no live appointment overlapping [starts_at, ends_at)."""
    busy = Appointment.objects.filter(
        ~Q(status=Appointment.Status.CANCELLED), starts_at__lt=ends_at, ends_at__gt=starts_at
    ).values("staff_id")
    return staff.exclude(pk__in=busy.filter(staff_id__isnull=False))


def _candidates(
    *, tenant_id: int, service: Service | None, starts_at: datetime, ends_at: datetime
) -> list[StaffMember]:
    active = StaffMember.objects.filter(tenant_id=tenant_id, active=True)
    if service is not None and active.filter(services=service).exists():
        active = active.filter(services=service)
    return list(staff_free(staff=active, starts_at=starts_at, ends_at=ends_at).order_by("pk"))


def _notify(appointment: Appointment, kind: str) -> None:
    """The notice goes through the outbox: committed with the change, sent
    even if Redis is down now; a rolled-back change sends nothing."""
    outbox.publish(
        NOTIFY_EVENT,
        {"appointment_id": appointment.pk, "kind": kind, "starts_at": appointment.starts_at.isoformat()},
        aggregate=("appointment", appointment.pk),
        tenant=appointment.tenant_id,
    )


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _announce(appointment: Appointment, event_type: str, **extra: object) -> None:
    """The tenant's webhook event (appointments/event_types.py), apart from the
    customer's notice: published with every change, notice or not."""
    staff, customer = appointment.staff, appointment.customer
    outbox.publish(
        event_type,
        {
            "appointment_id": appointment.pk,
            "status": appointment.status,
            "starts_at": _utc(appointment.starts_at),
            "ends_at": _utc(appointment.ends_at),
            "service_name": appointment.service_name,
            "staff_id": staff.pk if staff else None,
            "staff_name": staff.name if staff else "",
            "customer_name": appointment.customer_name,
            "customer_email": appointment.customer_email,
            "customer_phone": customer.phone if customer else "",
            "source": appointment.source,
            **extra,
        },
        aggregate=("appointment", appointment.pk),
        tenant=appointment.tenant_id,
    )


def _insert(fields: dict[str, object]) -> Appointment | None:
    """The row, or None when the exclusion constraint refuses it (a savepoint
    keeps the caller's transaction usable after the refusal)."""
    try:
        with transaction.atomic():
            return Appointment.objects.create(**fields)
    except IntegrityError as exc:
        if _exclusion_violation(exc):
            return None
        raise


@transaction.atomic
def appointment_book(
    *,
    tenant_id: int,
    customer: Customer | None,
    customer_name: str,
    customer_email: str,
    service: Service | None,
    service_name: str,
    starts_at: datetime,
    ends_at: datetime,
    source: str,
    staff: StaffMember | None = None,
    status: str = Appointment.Status.BOOKED,
    external_uid: str = "",
    check_hours: bool = True,
    notify: bool = True,
) -> Appointment:
    """Book a slot: with ``staff`` for that person, else the first free staff
    member offering the service (a tenant with no staff books unassigned).

    Raises OutsideHours, or SlotTaken when no one is free — also when another
    booking took the slot between our check and our insert. Queues the
    confirmation (``notify``) in the same transaction.
    """
    if check_hours and not within_opening_hours(tenant_id=tenant_id, starts_at=starts_at, ends_at=ends_at):
        raise OutsideHours(f"{starts_at:%a %Y-%m-%d %H:%M}–{ends_at:%H:%M} UTC is outside opening hours")
    fields: dict[str, object] = {
        "tenant_id": tenant_id,
        "customer": customer,
        "customer_name": customer_name[:200],
        "customer_email": customer_email,
        "service": service,
        "service_name": service_name[:200],
        "starts_at": starts_at,
        "ends_at": ends_at,
        "source": source,
        "status": status,
    }
    if staff is not None:
        candidates: list[StaffMember | None] = [staff]
    elif StaffMember.objects.filter(tenant_id=tenant_id).exists():
        candidates = list(_candidates(tenant_id=tenant_id, service=service, starts_at=starts_at, ends_at=ends_at))
    else:
        candidates = [None]
    appointment = None
    for candidate in candidates:
        appointment = _insert({**fields, "staff": candidate})
        if appointment is not None:
            break
    if appointment is None:
        raise SlotTaken(f"no staff member is free {starts_at:%a %Y-%m-%d %H:%M}–{ends_at:%H:%M} UTC")
    kind = AppointmentChange.Kind.BOOKED if status != Appointment.Status.CANCELLED else AppointmentChange.Kind.CANCELLED
    AppointmentChange.objects.create(
        appointment=appointment, kind=kind, source=source, new_starts_at=starts_at, new_ends_at=ends_at
    )
    if external_uid:
        ExternalBooking.objects.create(tenant_id=tenant_id, source=source, uid=external_uid, appointment=appointment)
    if notify and status == Appointment.Status.BOOKED:
        _notify(appointment, "confirmation")
    _announce(appointment, "appointment.created")
    return appointment


@transaction.atomic
def appointment_cancel(*, appointment: Appointment, source: str, reason: str = "", notify: bool = True) -> bool:
    """Cancel a live appointment (False when it already was). Its pending
    reminders stop (they check the status); the customer gets a cancellation
    notice unless the appointment is already over."""
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if locked.status == Appointment.Status.CANCELLED:
        return False
    now = timezone.now()
    locked.status, locked.cancelled_at, locked.cancellation_reason = Appointment.Status.CANCELLED, now, reason[:500]
    locked.save(update_fields=["status", "cancelled_at", "cancellation_reason", "updated_at"])
    AppointmentChange.objects.create(
        appointment=locked, kind=AppointmentChange.Kind.CANCELLED, source=source, note=reason[:500]
    )
    if notify and locked.ends_at > now:
        _notify(locked, "cancellation")
    _announce(locked, "appointment.cancelled", reason=locked.cancellation_reason)
    appointment.status, appointment.cancelled_at = locked.status, locked.cancelled_at
    return True


@transaction.atomic
def appointment_reschedule(
    *,
    appointment: Appointment,
    starts_at: datetime,
    ends_at: datetime,
    source: str,
    staff: StaffMember | None = None,
    notify: bool = True,
) -> Appointment:
    """Move a live appointment (to ``staff`` when given, else the same staff
    member). SlotTaken when that person is busy then, NotLive when it is
    cancelled. Reminders start afresh for the new time; none go out for the
    old one (they are keyed by start time)."""
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if locked.status != Appointment.Status.BOOKED:
        raise NotLive(f"appointment {locked.pk} is {locked.status}; only a booked appointment can be moved")
    new_staff = staff if staff is not None else locked.staff
    if (locked.starts_at, locked.ends_at, locked.staff_id) == (starts_at, ends_at, getattr(new_staff, "pk", None)):
        return locked
    old = (locked.starts_at, locked.ends_at)
    locked.starts_at, locked.ends_at, locked.staff = starts_at, ends_at, new_staff
    if old[0] != starts_at:
        locked.reminder_sent_at = None
    try:
        with transaction.atomic():
            locked.save(update_fields=["starts_at", "ends_at", "staff", "reminder_sent_at", "updated_at"])
    except IntegrityError as exc:
        if _exclusion_violation(exc):
            raise SlotTaken(f"{locked.staff} is not free {starts_at:%a %Y-%m-%d %H:%M}–{ends_at:%H:%M} UTC") from None
        raise
    AppointmentChange.objects.create(
        appointment=locked,
        kind=AppointmentChange.Kind.RESCHEDULED,
        source=source,
        old_starts_at=old[0],
        old_ends_at=old[1],
        new_starts_at=starts_at,
        new_ends_at=ends_at,
    )
    if notify:
        _notify(locked, "reschedule")
    _announce(locked, "appointment.rescheduled", previous_starts_at=_utc(old[0]), previous_ends_at=_utc(old[1]))
    return locked
