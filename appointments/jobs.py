"""The appointments app's jobs: one notification per job on the logical
queue ``notifications`` (60 s, 3 tries), and the reminder scan."""

from __future__ import annotations

from datetime import datetime

from appointments.services import notification_send, reminders_due
from queueing.definitions import Exponential, job


@job(queue="notifications", timeout=60, tries=3, backoff=Exponential(base=10, cap=300))
def send_notification(tenant_id: int, appointment_id: int, kind: str, starts_at: str) -> str:
    """Send one notification (claimed: a second run or a concurrent one sends nothing)."""
    return notification_send(appointment_id=appointment_id, kind=kind, starts_at=datetime.fromisoformat(starts_at))


@job(queue="notifications", timeout=120, unique_for=300)
def send_appointment_reminders() -> dict[str, int]:
    """Every five minutes: a send job for each 24-hour and 2-hour reminder due.
    Two schedulers (or a run overlapping the last) may queue one twice; the
    claim sends it once."""
    due = reminders_due()
    send_notification.dispatch_many([(t, a, kind, start.isoformat()) for t, a, kind, start in due])
    return {"queued": len(due)}
