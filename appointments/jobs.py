"""SendAppointmentReminders: hourly, one reminder per appointment starting in
23–24 hours, claimed before sending so concurrent runs never send twice."""

from __future__ import annotations

import logging

from appointments.emails import reminder_message
from appointments.models import Appointment
from appointments.services import reminder_claim, reminder_release, reminders_due
from queueing.definitions import job

log = logging.getLogger(__name__)


@job(queue="notifications", timeout=600, tries=1)
def send_appointment_reminders() -> dict[str, int]:
    """Not retried as a whole: a failed send releases its claim, and the
    next hourly run (or this job run again) picks that appointment up."""
    sent = failed = skipped = 0
    for appointment_id in reminders_due():
        claimed_at = reminder_claim(appointment_id=appointment_id)
        if claimed_at is None:  # another run has it, or it was cancelled meanwhile
            skipped += 1
            continue
        try:
            appointment = Appointment.objects.select_related("tenant").get(pk=appointment_id)
            reminder_message(appointment).send()
        except Exception:
            reminder_release(appointment_id=appointment_id, claimed_at=claimed_at)
            log.exception("reminder for appointment %s not sent; claim released for the next run", appointment_id)
            failed += 1
        else:
            sent += 1
    if failed:
        log.warning("appointment reminders: %d sent, %d failed (will retry), %d skipped", sent, failed, skipped)
    return {"sent": sent, "failed": failed, "skipped": skipped}
