"""The e-mails about an appointment: text and HTML parts from
templates/emails/appointment_notice.*, and the appointment as an .ics
(RFC 5545/5546, via icalendar) — ``METHOD:REQUEST`` with a growing SEQUENCE
for a booking or a move, ``METHOD:CANCEL`` for a cancellation, so a calendar
app updates or removes the one entry (same UID) instead of adding another."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from appointments.models import Appointment
from lib.mail import templated_message

SUBJECTS = {
    "confirmation": "Confirmed: {service} on {when}",
    "reminder_24h": "Reminder: {service} tomorrow at {time} (UTC)",
    "reminder_2h": "Reminder: {service} today at {time} (UTC)",
    "cancellation": "Cancelled: {service} on {when}",
    "reschedule": "Moved: {service} is now on {when}",
}
INTROS = {
    "confirmation": "Your appointment with {tenant} is booked:",
    "reminder_24h": "This is a reminder of your appointment with {tenant} tomorrow:",
    "reminder_2h": "This is a reminder of your appointment with {tenant} in two hours:",
    "cancellation": "Your appointment with {tenant} has been cancelled:",
    "reschedule": "Your appointment with {tenant} has moved to a new time:",
}


def ics_for(appointment: Appointment, *, cancel: bool = False) -> bytes:
    # Imported here: icalendar costs every worker ~9 MB at start (docs/benchmarks.md, RSS).
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//Vito Business OS//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    # A stable UID: calendar apps update (or, on CANCEL, remove) the same entry.
    event.add("uid", f"appointment-{appointment.pk}@{urlsplit(settings.SITE_URL).hostname or 'localhost'}")
    # SEQUENCE grows with every change, so each update supersedes the last.
    event.add("sequence", appointment.changes.count())
    event.add("dtstamp", timezone.now())
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("summary", f"{appointment.service_name} — {appointment.tenant.name}")
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    event.add("description", f"Your appointment with {appointment.tenant.name}.")
    if appointment.customer_email:
        event.add("attendee", f"mailto:{appointment.customer_email}")
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def notice_message(
    appointment: Appointment, kind: str, *, previous_starts_at: datetime | None = None
) -> EmailMultiAlternatives:
    cancelled = kind == "cancellation"
    tenant = appointment.tenant
    subject = SUBJECTS[kind].format(
        service=appointment.service_name,
        when=f"{appointment.starts_at:%a %d %b %Y, %H:%M} (UTC)",
        time=f"{appointment.starts_at:%H:%M}",
    )
    context = {
        "appointment": appointment,
        "tenant": tenant,
        "intro": INTROS[kind].format(tenant=tenant.name),
        "starts_at": appointment.starts_at,
        "ends_at": appointment.ends_at,
        "previous_starts_at": previous_starts_at,
        "cancelled": cancelled,
    }
    message = templated_message("appointment_notice", context, subject=subject, to=[appointment.customer_email])
    method = "CANCEL" if cancelled else "REQUEST"
    message.attach("appointment.ics", ics_for(appointment, cancel=cancelled), f"text/calendar; method={method}")
    return message
