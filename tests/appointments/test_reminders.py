from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from icalendar import Calendar

from appointments.jobs import send_appointment_reminders
from appointments.models import Appointment
from tenants.models import Tenant
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _appointment(tenant: Tenant, hours: float, **extra: Any) -> Appointment:
    starts = timezone.now() + timedelta(hours=hours)
    return Appointment.objects.create(
        tenant=tenant,
        customer_name=extra.pop("name", "Ada"),
        customer_email=extra.pop("email", f"c{hours}@example.com"),
        service="Haircut",
        starts_at=starts,
        ends_at=starts + timedelta(minutes=45),
        **extra,
    )


def test_one_reminder_per_appointment_in_the_window_with_text_html_and_ics(smtp_server: Any) -> None:
    tenant = TenantFactory.create(name="Salon Nova")
    due = _appointment(tenant, 23.5, email="due@example.com", name="Grace")
    too_soon = _appointment(tenant, 22.5)
    too_late = _appointment(tenant, 24.5)
    cancelled = _appointment(tenant, 23.5, status=Appointment.Status.CANCELLED)

    assert send_appointment_reminders() == {"sent": 1, "failed": 0, "skipped": 0}
    assert send_appointment_reminders() == {"sent": 0, "failed": 0, "skipped": 0}  # idempotent

    [message] = smtp_server.messages
    assert message["To"] == "due@example.com" and "Haircut" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello Grace" in text and "Salon Nova" in text
    assert "<strong>Salon Nova</strong>" in html
    [ics] = [part for part in message.iter_attachments() if part.get_filename() == "appointment.ics"]
    event = Calendar.from_ical(ics.get_payload(decode=True)).walk("VEVENT")[0]
    assert event.decoded("dtstart") == due.starts_at.replace(microsecond=0)  # iCalendar keeps seconds
    assert str(event["uid"]).startswith(f"appointment-{due.pk}@")
    for row in (too_soon, too_late, cancelled):
        row.refresh_from_db()
        assert row.reminder_sent_at is None
    due.refresh_from_db()
    assert due.reminder_sent_at is not None


def test_two_runs_at_once_send_each_reminder_once(smtp_server: Any) -> None:
    tenant = TenantFactory.create()
    for n in range(30):
        _appointment(tenant, 23.1 + n * 0.02, email=f"p{n}@example.com")
    results: list[dict[str, int]] = []

    def run() -> None:
        try:
            results.append(send_appointment_reminders())
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["sent"] for r in results) == 30
    assert sorted(str(m["To"]) for m in smtp_server.messages) == sorted(f"p{n}@example.com" for n in range(30))


def test_a_failed_send_releases_the_claim_and_the_next_run_sends_it(smtp_server: Any) -> None:
    appointment = _appointment(TenantFactory.create(), 23.5, email="later@example.com")
    smtp_server.reject = True
    assert send_appointment_reminders() == {"sent": 0, "failed": 1, "skipped": 0}
    appointment.refresh_from_db()
    assert appointment.reminder_sent_at is None and smtp_server.messages == []

    smtp_server.reject = False
    assert send_appointment_reminders()["sent"] == 1
    assert [str(m["To"]) for m in smtp_server.messages] == ["later@example.com"]
