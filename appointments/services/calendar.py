"""Cal.com's booking events applied to appointments. Events may arrive in
any order (Cal.com delivers each on its own, and a retry comes late), so
each handler reads what is already known of the booking's uids and moves
toward the same final state whatever came first:

- created: books, unless the uid is known (a cancel or a reschedule that
  arrived first already decided the appointment);
- cancelled: cancels; an unknown uid is recorded as a cancelled appointment,
  so its late "created" finds it and books nothing;
- rescheduled (new uid, original ``rescheduleUid``): moves the original's
  appointment; both uids then point at it. docs/appointments.md."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from appointments.models import Appointment, ExternalBooking, Service, StaffMember
from appointments.services.booking import (
    SlotTaken,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
)
from appointments.services.customers import customer_find_or_create
from webhooks.models import WebhookEvent
from webhooks.providers.calcom import CANCELLED, CREATED, RESCHEDULED, Booking, Person, parse_booking
from webhooks.transport import InvalidWebhook

SOURCE = Appointment.Source.CALENDAR


def _lock(tenant_id: int, *uids: str) -> None:
    """Serialise the events of one booking (a create and its cancel processed
    at the same moment on two workers): transaction-scoped advisory locks,
    taken in a fixed order so two reschedules never deadlock."""
    with connection.cursor() as cursor:
        for uid in sorted(set(uids)):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"calcom:{tenant_id}:{uid}"])


def _known(tenant_id: int, uid: str) -> Appointment | None:
    ref = ExternalBooking.objects.filter(tenant_id=tenant_id, source=SOURCE, uid=uid).select_related("appointment")
    found = ref.first()
    return found.appointment if found is not None else None


def _remember(tenant_id: int, uid: str, appointment: Appointment) -> None:
    ExternalBooking.objects.update_or_create(
        tenant_id=tenant_id, source=SOURCE, uid=uid, defaults={"appointment": appointment}
    )


def _staff(tenant_id: int, organizer: Person) -> StaffMember:
    external = organizer.external_id or organizer.email
    staff, _ = StaffMember.objects.get_or_create(
        tenant_id=tenant_id,
        external_id=external,
        defaults={"name": organizer.name or organizer.email or f"organizer {external}", "email": organizer.email},
    )
    return staff


def _service(tenant_id: int, booking: Booking) -> Service | None:
    if not booking.event_type_id:
        return None
    minutes = booking.length_minutes or int((booking.ends_at - booking.starts_at).total_seconds() // 60) or 1
    service, _ = Service.objects.get_or_create(
        tenant_id=tenant_id,
        external_id=booking.event_type_id,
        defaults={
            "name": booking.event_type_name or f"event type {booking.event_type_id}",
            "duration_minutes": minutes,
        },
    )
    return service


def _book(tenant_id: int, booking: Booking, *, status: str = Appointment.Status.BOOKED) -> Appointment:
    attendee = booking.attendee
    customer = customer_find_or_create(
        tenant_id=tenant_id, name=attendee.name, email=attendee.email, phone=attendee.phone
    )
    service = _service(tenant_id, booking)
    try:
        appointment = appointment_book(
            tenant_id=tenant_id,
            customer=customer,
            customer_name=attendee.name or attendee.email,
            customer_email=attendee.email,
            service=service,
            service_name=service.name if service is not None else booking.event_type_name or "Appointment",
            starts_at=booking.starts_at,
            ends_at=booking.ends_at,
            source=SOURCE,
            staff=_staff(tenant_id, booking.organizer),
            status=status,
            external_uid=booking.uid,
            check_hours=False,  # the calendar offered this slot: its hours rule, not ours
        )
    except SlotTaken as exc:
        # Retrying cannot free the slot: the event fails with the reason, for an operator.
        raise InvalidWebhook(f"booking {booking.uid}: {exc}") from None
    if status == Appointment.Status.CANCELLED:
        Appointment.objects.filter(pk=appointment.pk).update(
            cancellation_reason=booking.cancellation_reason[:500], cancelled_at=timezone.now()
        )
    return appointment


def calendar_created(*, tenant_id: int, booking: Booking) -> str:
    _lock(tenant_id, booking.uid)
    known = _known(tenant_id, booking.uid)
    if known is not None:
        return f"booking {booking.uid} already known: appointment {known.pk} ({known.status})"
    return f"booked appointment {_book(tenant_id, booking).pk}"


def calendar_cancelled(*, tenant_id: int, booking: Booking) -> str:
    _lock(tenant_id, booking.uid)
    known = _known(tenant_id, booking.uid)
    if known is None:
        appointment = _book(tenant_id, booking, status=Appointment.Status.CANCELLED)
        return f"cancelled before its creation arrived: recorded as cancelled appointment {appointment.pk}"
    if appointment_cancel(appointment=known, source=SOURCE, reason=booking.cancellation_reason):
        return f"cancelled appointment {known.pk}"
    return f"appointment {known.pk} was already cancelled"


def calendar_rescheduled(*, tenant_id: int, booking: Booking) -> str:
    _lock(tenant_id, booking.uid, booking.previous_uid)
    new, old = _known(tenant_id, booking.uid), _known(tenant_id, booking.previous_uid)
    if new is None and old is None:
        appointment = _book(tenant_id, booking)
        _remember(tenant_id, booking.previous_uid, appointment)
        return f"original {booking.previous_uid} not seen yet: booked appointment {appointment.pk} at the new time"
    if new is None:
        assert old is not None
        _remember(tenant_id, booking.uid, old)
        if old.status != Appointment.Status.BOOKED:
            return f"appointment {old.pk} is {old.status}; left as it is"
        try:
            appointment_reschedule(
                appointment=old,
                starts_at=booking.starts_at,
                ends_at=booking.ends_at,
                source=SOURCE,
                staff=_staff(tenant_id, booking.organizer),
            )
        except SlotTaken as exc:
            raise InvalidWebhook(f"booking {booking.uid}: {exc}") from None
        return f"moved appointment {old.pk}"
    if old is None or old.pk == new.pk:
        _remember(tenant_id, booking.previous_uid, new)
        return f"already applied: appointment {new.pk}"
    # Both known as different appointments: the original was created, and a
    # later event of the new booking (its cancel, or a further move) came
    # first. The new booking's appointment holds the later state; the
    # original's is superseded.
    appointment_cancel(appointment=old, source=SOURCE, reason=f"rescheduled as booking {booking.uid}")
    ExternalBooking.objects.filter(appointment=old).update(appointment=new)
    return f"appointment {old.pk} superseded by appointment {new.pk}"


_APPLY = {CREATED: calendar_created, CANCELLED: calendar_cancelled, RESCHEDULED: calendar_rescheduled}


def calendar_handle(event: WebhookEvent) -> str:
    """The handler of Cal.com's BOOKING_* events (registered in appointments/apps.py)."""
    booking = parse_booking(event.type, event.payload)
    with transaction.atomic():
        return _APPLY[event.type](tenant_id=int(event.account), booking=booking)
