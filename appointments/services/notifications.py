"""Notifications about appointments, each (appointment, kind, start time)
sent exactly once — with concurrent schedulers, redelivered messages and
retries. docs/appointments.md.

The claim is the Notification row, inserted under its unique key in the
transaction that sends; the appointment is locked meanwhile, so the status
and time checked are the ones sent about. A failed send raises, rolling the
claim back for the retry; a crash rolls it back too (nothing to release)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from appointments.channels import CHANNELS, Channel
from appointments.models import Appointment, AppointmentChange, Notification

Kind = Notification.Kind
# Reminders go out when the start is this far ahead: the scheduler runs every
# five minutes, so each falls in ~12 runs' windows (a missed run is caught by
# the next one) and the claim sends it once.
REMINDER_WINDOWS = {
    Kind.REMINDER_24H: (timedelta(hours=23), timedelta(hours=24)),
    Kind.REMINDER_2H: (timedelta(hours=1), timedelta(hours=2)),
}


def _no_longer_applies(appointment: Appointment, kind: str, starts_at: datetime, now: datetime) -> str:
    """Why this message should not go out after all ("" when it should)."""
    if kind == Kind.CANCELLATION:
        return "" if appointment.status == Appointment.Status.CANCELLED else f"appointment is {appointment.status}"
    if appointment.status != Appointment.Status.BOOKED:
        return f"appointment is {appointment.status}"
    if appointment.starts_at != starts_at:
        return f"appointment moved to {appointment.starts_at:%Y-%m-%d %H:%M} UTC"
    if kind in REMINDER_WINDOWS and starts_at <= now:
        return "appointment has started"
    return ""


def _previous_start(appointment: Appointment) -> datetime | None:
    moved = appointment.changes.filter(kind=AppointmentChange.Kind.RESCHEDULED).order_by("-at", "-pk").first()
    return moved.old_starts_at if moved is not None else None


def notification_send(
    *,
    appointment_id: int,
    kind: str,
    starts_at: datetime,
    channels: Sequence[Channel] = CHANNELS,
    now: datetime | None = None,
) -> str:
    """Send one notification unless it was already sent (or no longer applies).
    Raises when the channel fails: nothing is recorded and a retry sends it."""
    now = now or timezone.now()
    with transaction.atomic():
        appointment = (
            Appointment.objects.select_for_update(of=("self",))
            .select_related("tenant", "staff")
            .filter(pk=appointment_id)
            .first()
        )
        if appointment is None:
            return "appointment deleted: nothing to send"
        claim, created = Notification.objects.get_or_create(
            appointment=appointment, kind=kind, starts_at=starts_at, defaults={"at": now}
        )
        if not created:
            return f"{kind} already {claim.status} at {claim.at:%Y-%m-%d %H:%M:%S}"
        reason = _no_longer_applies(appointment, kind, starts_at, now)
        channel = next((c for c in channels if c.address(appointment)), None)
        if not reason and channel is None:
            reason = "the customer has no address on any channel"
        if reason:
            claim.status, claim.detail = Notification.Status.SKIPPED, reason[:500]
            claim.save(update_fields=["status", "detail"])
            return f"{kind} skipped: {reason}"
        assert channel is not None
        previous = _previous_start(appointment) if kind == Kind.RESCHEDULE else None
        channel.send(appointment, kind, previous_starts_at=previous)
        claim.channel, claim.detail = channel.name, channel.address(appointment)[:500]
        claim.save(update_fields=["channel", "detail"])
        if kind == Kind.REMINDER_24H:
            # Seed 002's flag, kept for the 24-hour reminder.
            Appointment.objects.filter(pk=appointment.pk).update(reminder_sent_at=now)
        return f"{kind} sent by {channel.name}"


def reminders_due(*, now: datetime | None = None) -> list[tuple[int, int, str, datetime]]:
    """(tenant id, appointment id, kind, start) of every reminder due now, in start order."""
    now = now or timezone.now()
    due: list[tuple[int, int, str, datetime]] = []
    for kind, (near, far) in REMINDER_WINDOWS.items():
        already = Notification.objects.filter(appointment=OuterRef("pk"), kind=kind, starts_at=OuterRef("starts_at"))
        window = Appointment.objects.filter(
            status=Appointment.Status.BOOKED, starts_at__gt=now + near, starts_at__lte=now + far
        )
        if kind == Kind.REMINDER_24H:
            window = window.filter(reminder_sent_at__isnull=True)  # served by appt_unreminded_starts_idx
        rows = window.filter(~Exists(already)).order_by("starts_at").values_list("tenant_id", "pk", "starts_at")
        due.extend((tenant_id, pk, kind.value, start) for tenant_id, pk, start in rows)
    return due
