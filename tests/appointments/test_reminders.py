"""Reminders 24 h and 2 h ahead, and every notice, exactly once: claimed
under a unique key, with concurrent schedulers, retries and a failing SMTP
server; fresh reminders after a move, none after a cancellation."""

from __future__ import annotations

import smtplib
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from icalendar import Calendar
from redis import Redis

from appointments.jobs import send_appointment_reminders, send_notification
from appointments.models import Appointment, Notification
from appointments.services import appointment_book, appointment_cancel, appointment_reschedule, notification_send
from appointments.services.notifications import reminders_due
from tenants.models import Tenant
from tests.factories import TenantFactory
from tests.queueing.conftest import run_worker, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def _appointment(tenant: Tenant, hours: float, *, email: str = "", name: str = "Ada") -> Appointment:
    starts = timezone.now() + timedelta(hours=hours)
    return appointment_book(
        tenant_id=tenant.pk,
        customer=None,
        customer_name=name,
        customer_email=email or f"c{hours}@example.com",
        service=None,
        service_name="Haircut",
        starts_at=starts,
        ends_at=starts + timedelta(minutes=45),
        source=Appointment.Source.API,
        notify=False,
    )


def _send_due() -> list[str]:
    return [
        notification_send(appointment_id=a, kind=kind, starts_at=start) for _tenant, a, kind, start in reminders_due()
    ]


def test_24h_and_2h_reminders_in_their_windows_with_text_html_and_ics(smtp_server: Any) -> None:
    tenant = TenantFactory.create(name="Salon Nova")
    tomorrow = _appointment(tenant, 23.5, email="tomorrow@example.com", name="Grace")
    soon = _appointment(tenant, 1.5, email="soon@example.com")
    for hours in (22.5, 24.5, 2.5, 0.5):
        _appointment(tenant, hours)
    cancelled = _appointment(tenant, 23.5)
    appointment_cancel(appointment=cancelled, source="api", notify=False)

    assert sorted(_send_due()) == ["reminder_24h sent by email", "reminder_2h sent by email"]
    assert _send_due() == []  # nothing due twice

    by_to = {str(m["To"]): m for m in smtp_server.messages}
    assert set(by_to) == {"tomorrow@example.com", "soon@example.com"}
    message = by_to["tomorrow@example.com"]
    assert message["Subject"].startswith("Reminder: Haircut tomorrow")
    assert "Hello Grace" in message.get_body(("plain",)).get_content()
    assert "<strong>" not in message.get_body(("plain",)).get_content()
    [ics] = [p for p in message.iter_attachments() if p.get_filename() == "appointment.ics"]
    event = Calendar.from_ical(ics.get_payload(decode=True)).walk("VEVENT")[0]
    assert event.decoded("dtstart") == tomorrow.starts_at.replace(microsecond=0)
    assert by_to["soon@example.com"]["Subject"].startswith("Reminder: Haircut today")
    tomorrow.refresh_from_db()
    soon.refresh_from_db()
    assert tomorrow.reminder_sent_at is not None  # seed 002's flag: the 24-hour reminder
    assert soon.reminder_sent_at is None


def test_two_schedulers_at_once_send_each_reminder_exactly_once(
    smtp_server: Any, redis_conn: Redis, monkeypatch: Any
) -> None:
    """Two scan jobs at the same moment each queue every due reminder; two
    workers then race through both copies: each goes out once."""
    monkeypatch.setenv("EMAIL_URL", smtp_server.url)
    tenant = TenantFactory.create()
    for n in range(20):
        _appointment(tenant, 23.1 + n * 0.04, email=f"day{n}@example.com")
        _appointment(tenant, 1.1 + n * 0.04, email=f"hours{n}@example.com")
    barrier = threading.Barrier(2)
    queued: list[dict[str, int]] = []

    def scheduler() -> None:
        try:
            barrier.wait()
            queued.append(send_appointment_reminders())
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [q["queued"] for q in queued] == [40, 40]
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "default", "--burst"], env=worker_env(), cwd=settings.BASE_DIR
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    recipients = sorted(str(m["To"]) for m in smtp_server.messages)
    assert recipients == sorted(
        [f"day{n}@example.com" for n in range(20)] + [f"hours{n}@example.com" for n in range(20)]
    )
    assert Notification.objects.filter(status="sent").count() == 40


def test_a_failed_send_rolls_the_claim_back_and_the_retry_sends_it(smtp_server: Any) -> None:
    appointment = _appointment(TenantFactory.create(), 23.5, email="later@example.com")
    smtp_server.reject = True
    with pytest.raises(smtplib.SMTPDataError, match="550"):
        notification_send(appointment_id=appointment.pk, kind="reminder_24h", starts_at=appointment.starts_at)
    appointment.refresh_from_db()
    assert appointment.reminder_sent_at is None and not Notification.objects.exists()

    smtp_server.reject = False
    assert _send_due() == ["reminder_24h sent by email"]
    assert [str(m["To"]) for m in smtp_server.messages] == ["later@example.com"]


def test_a_moved_appointment_gets_fresh_reminders_and_none_for_its_old_time(smtp_server: Any) -> None:
    appointment = _appointment(TenantFactory.create(), 23.5, email="moved@example.com")
    old_start = appointment.starts_at
    assert _send_due() == ["reminder_24h sent by email"]
    # Moved to 1.5 h from now: the 2-hour reminder is due for the new time...
    new_start = timezone.now() + timedelta(hours=1.5)
    appointment_reschedule(
        appointment=appointment, starts_at=new_start, ends_at=new_start + timedelta(minutes=45), source="api"
    )
    # ...and a reminder queued for the old time before the move is skipped.
    assert notification_send(appointment_id=appointment.pk, kind="reminder_2h", starts_at=old_start).startswith(
        "reminder_2h skipped: appointment moved"
    )
    assert _send_due() == ["reminder_2h sent by email"]
    notification_send(appointment_id=appointment.pk, kind="reschedule", starts_at=new_start)
    subjects = [m["Subject"].split(":")[0] for m in smtp_server.messages]
    assert subjects == ["Reminder", "Reminder", "Moved"]
    assert "(was " in smtp_server.messages[-1].get_body(("plain",)).get_content()


def test_a_cancelled_appointment_gets_its_notice_and_no_further_reminders(smtp_server: Any) -> None:
    appointment = _appointment(TenantFactory.create(), 1.5, email="off@example.com")
    appointment_cancel(appointment=appointment, source="api", reason="closed")
    assert _send_due() == []
    assert notification_send(appointment_id=appointment.pk, kind="cancellation", starts_at=appointment.starts_at) == (
        "cancellation sent by email"
    )
    # A reminder queued before the cancel is skipped, not sent.
    skipped = notification_send(appointment_id=appointment.pk, kind="reminder_2h", starts_at=appointment.starts_at)
    assert skipped == "reminder_2h skipped: appointment is cancelled"
    [message] = smtp_server.messages
    [ics] = [p for p in message.iter_attachments() if p.get_filename() == "appointment.ics"]
    calendar = Calendar.from_ical(ics.get_payload(decode=True))
    assert str(calendar["method"]) == "CANCEL" and str(calendar.walk("VEVENT")[0]["status"]) == "CANCELLED"


def test_a_customer_without_an_e_mail_address_is_skipped_and_recorded(smtp_server: Any) -> None:
    appointment = _appointment(TenantFactory.create(), 23.5, email=" ")
    Appointment.objects.filter(pk=appointment.pk).update(customer_email="")
    assert _send_due() == ["reminder_24h skipped: the customer has no address on any channel"]
    assert _send_due() == [] and smtp_server.messages == []


def test_the_send_job_round_trips_its_arguments_through_json(
    smtp_server: Any, redis_conn: Redis, monkeypatch: Any
) -> None:
    monkeypatch.setenv("EMAIL_URL", smtp_server.url)
    appointment = _appointment(TenantFactory.create(), 23.5, email="job@example.com")
    send_notification.dispatch(appointment.tenant_id, appointment.pk, "reminder_24h", appointment.starts_at.isoformat())
    assert run_worker("default", "--burst").returncode == 0
    assert [str(m["To"]) for m in smtp_server.messages] == ["job@example.com"]
