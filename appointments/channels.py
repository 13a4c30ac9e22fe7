"""How a notification reaches a customer. E-mail today; a channel is anything
with a name, an address for the customer (or "" when it cannot reach them)
and a send that raises on failure — an SMS channel slots in beside it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from appointments.emails import notice_message
from appointments.models import Appointment
from lib import mail


class Channel(Protocol):
    name: str

    def address(self, appointment: Appointment) -> str: ...

    def send(self, appointment: Appointment, kind: str, *, previous_starts_at: datetime | None) -> None: ...


class EmailChannel:
    name = "email"

    def address(self, appointment: Appointment) -> str:
        return appointment.customer_email

    def send(self, appointment: Appointment, kind: str, *, previous_starts_at: datetime | None) -> None:
        # This thread's SMTP connection, kept open between notices (lib/mail.py).
        mail.send(notice_message(appointment, kind, previous_starts_at=previous_starts_at))


CHANNELS: tuple[Channel, ...] = (EmailChannel(),)
