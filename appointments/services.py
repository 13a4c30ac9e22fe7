"""Appointment reminders: pick the due ones, claim each with a conditional
UPDATE before sending, release the claim if the send fails."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from appointments.models import Appointment

# "Tomorrow": appointments starting 23 to 24 hours from now. The job runs
# hourly, so each appointment falls in exactly one run's window (and a missed
# run is caught by the next one only within the hour: see docs/appointments.md).
WINDOW_START = timedelta(hours=23)
WINDOW_END = timedelta(hours=24)


def _unreminded() -> QuerySet[Appointment]:
    # Matches appt_unreminded_starts_idx (partial: un-reminded, not cancelled).
    return Appointment.objects.filter(reminder_sent_at__isnull=True).filter(~Q(status=Appointment.Status.CANCELLED))


def reminders_due(*, now: datetime | None = None) -> list[int]:
    """Ids of appointments due a reminder now, in start order."""
    now = now or timezone.now()
    window = _unreminded().filter(starts_at__gte=now + WINDOW_START, starts_at__lt=now + WINDOW_END)
    return list(window.order_by("starts_at").values_list("pk", flat=True))


def reminder_claim(*, appointment_id: int, now: datetime | None = None) -> datetime | None:
    """Mark the reminder as sent *before* sending: exactly one of several
    concurrent runs gets the row. Returns the claim stamp (to release it
    with) or None when another run has it, or it no longer qualifies."""
    stamp = now or timezone.now()
    claimed = _unreminded().filter(pk=appointment_id).update(reminder_sent_at=stamp)
    return stamp if claimed else None


def reminder_release(*, appointment_id: int, claimed_at: datetime) -> bool:
    """Give the claim back after a failed send, so the next run retries.
    Only our own claim: a later successful run's stamp is left alone."""
    return bool(
        Appointment.objects.filter(pk=appointment_id, reminder_sent_at=claimed_at).update(reminder_sent_at=None)
    )
