"""The outbound webhook event types of appointments (registered in ``AppointmentsConfig.ready()``).
The payloads are written by appointments/services/booking.py with each change,
whichever entry point made it (calendar, voice agent, API, admin)."""

from __future__ import annotations

from typing import Any

from tenants.event_types import pick
from webhooks.outbound.catalog import EventType

APPOINTMENT_FIELDS = (
    "appointment_id",
    "status",
    "starts_at",
    "ends_at",
    "service_name",
    "staff_id",
    "staff_name",
    "customer_name",
    "customer_email",
    "customer_phone",
    "source",
)
_EXAMPLE: dict[str, Any] = {
    "appointment_id": 734,
    "status": "booked",
    "starts_at": "2026-03-17T09:30:00+00:00",
    "ends_at": "2026-03-17T10:00:00+00:00",
    "service_name": "Haircut",
    "staff_id": 12,
    "staff_name": "Bob Meyer",
    "customer_name": "Jane Doe",
    "customer_email": "jane.doe@example.com",
    "customer_phone": "+49301234567",
    "source": "calendar",
}
_COMMON = (
    "Times are ISO 8601 in UTC; `staff_id` is null (and `staff_name` empty) for an unassigned booking; "
    "`customer_phone` is E.164 or empty; `source` is calendar, voice, api or admin."
)

EVENT_TYPES = [
    EventType(
        "appointment.created",
        "An appointment was booked. `status` is `booked`, or `cancelled` when the calendar reported its "
        "cancellation before its booking. " + _COMMON,
        version=1,
        example=_EXAMPLE,
        shape=pick(*APPOINTMENT_FIELDS),
    ),
    EventType(
        "appointment.cancelled",
        "An appointment was cancelled, with the reason given (may be empty). " + _COMMON,
        version=1,
        example={**_EXAMPLE, "status": "cancelled", "reason": "Customer is ill"},
        shape=pick(*APPOINTMENT_FIELDS, "reason"),
    ),
    EventType(
        "appointment.rescheduled",
        "An appointment was moved to another time or staff member; `previous_starts_at` and "
        "`previous_ends_at` are the times before. " + _COMMON,
        version=1,
        example={
            **_EXAMPLE,
            "starts_at": "2026-03-18T14:00:00+00:00",
            "ends_at": "2026-03-18T14:30:00+00:00",
            "previous_starts_at": "2026-03-17T09:30:00+00:00",
            "previous_ends_at": "2026-03-17T10:00:00+00:00",
        },
        shape=pick(*APPOINTMENT_FIELDS, "previous_starts_at", "previous_ends_at"),
    ),
]
