"""The reminder e-mail: text and HTML parts from templates/emails/, and the
appointment as an .ics attachment (RFC 5545, via icalendar)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from icalendar import Calendar, Event

from appointments.models import Appointment


def ics_for(appointment: Appointment) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Vito Business OS//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    # A stable UID: calendar apps update the same entry if it is sent again.
    event.add("uid", f"appointment-{appointment.pk}@{urlsplit(settings.SITE_URL).hostname or 'localhost'}")
    event.add("dtstamp", appointment.created_at)
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("summary", f"{appointment.service} — {appointment.tenant.name}")
    event.add("description", f"Your appointment with {appointment.tenant.name}.")
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def reminder_message(appointment: Appointment) -> EmailMultiAlternatives:
    context = {"appointment": appointment, "tenant": appointment.tenant}
    subject = f"Reminder: {appointment.service} tomorrow at {appointment.starts_at:%H:%M} (UTC)"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/appointment_reminder.txt", context),
        to=[appointment.customer_email],
    )
    message.attach_alternative(render_to_string("emails/appointment_reminder.html", context), "text/html")
    message.attach("appointment.ics", ics_for(appointment), "text/calendar; method=PUBLISH")
    return message
