"""Writes of the appointments app: booking, cancelling and moving
(``booking``), Cal.com events (``calendar``), voice-agent calls (``calls``),
customers, notifications and provider secrets. docs/appointments.md."""

from appointments.services.booking import (
    NOTIFY_EVENT,
    NotLive,
    OutsideHours,
    SlotTaken,
    Unavailable,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    within_opening_hours,
)
from appointments.services.customers import customer_find_or_create
from appointments.services.notifications import notification_send, reminders_due
from appointments.services.secrets import (
    provider_account,
    provider_secret_generate,
    provider_secret_set,
    provider_secrets,
)

__all__ = [
    "NOTIFY_EVENT",
    "NotLive",
    "OutsideHours",
    "SlotTaken",
    "Unavailable",
    "appointment_book",
    "appointment_cancel",
    "appointment_reschedule",
    "customer_find_or_create",
    "notification_send",
    "provider_account",
    "provider_secret_generate",
    "provider_secret_set",
    "provider_secrets",
    "reminders_due",
    "within_opening_hours",
]
