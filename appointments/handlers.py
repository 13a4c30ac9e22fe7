"""Outbox handlers of the appointments app (routes registered in apps.py)."""

from __future__ import annotations

from datetime import datetime

from appointments.services import notification_send
from outbox.routes import Event


def appointment_notify(event: Event) -> None:
    """``appointment.notify`` → the notice, sent by this delivery (queue
    ``notifications``, 60 s, 3 tries). A send failure fails the delivery and
    rolls the claim back; the outbox retries it."""
    payload = event.payload
    notification_send(
        appointment_id=int(payload["appointment_id"]),
        kind=str(payload["kind"]),
        starts_at=datetime.fromisoformat(payload["starts_at"]),
    )
