"""Appointment notices through a real relay and worker reuse one SMTP
connection (lib.mail.send), and a session the server ends is reopened
without losing or doubling a notice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from redis import Redis

from appointments.models import Appointment, Notification
from appointments.services import appointment_book
from outbox.services import outbox_relay_drain
from tenants.models import Tenant
from tests.factories import TenantFactory
from tests.lib.smtp_servers import Server, point_django_at, serving
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def smtp(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    with serving(Server()) as (server, port):
        point_django_at(settings, port)
        monkeypatch.setenv("EMAIL_URL", server.url)  # for the worker subprocess
        yield server


def _book(tenant: Tenant, count: int) -> list[str]:
    starts = timezone.now() + timedelta(days=3)
    emails = [f"guest{n}@example.com" for n in range(count)]
    for n, address in enumerate(emails):
        at = starts + timedelta(hours=n)
        appointment_book(
            tenant_id=tenant.pk, customer=None, customer_name=f"Guest {n}", customer_email=address, service=None,
            service_name="Haircut", starts_at=at, ends_at=at + timedelta(minutes=30), source=Appointment.Source.API,
        )  # fmt: skip
    return emails


def _confirm_all() -> None:
    outbox_relay_drain()  # the confirmations, written with the bookings
    worker = run_worker("default", "--burst")
    assert worker.returncode == 0, worker.stderr[-3000:]


def _recipients(server: Server) -> Counter[str]:
    with server.lock:
        return Counter(str(m["To"]) for m in server.messages)


def test_a_worker_sends_every_confirmation_on_one_connection(redis_conn: Redis, smtp: Server) -> None:
    emails = _book(TenantFactory.create(), 12)
    _confirm_all()
    assert _recipients(smtp) == Counter(emails)
    assert smtp.count("connections") == 1 and smtp.count("closed") == 1  # QUIT at the worker's exit
    assert Notification.objects.filter(kind="confirmation", status="sent").count() == 12


def test_sessions_the_server_ends_are_reopened_and_each_notice_goes_once(redis_conn: Redis, smtp: Server) -> None:
    smtp.max_messages, smtp.ending = 5, "close"  # the session is gone when the 6th message starts
    emails = _book(TenantFactory.create(), 12)
    _confirm_all()
    assert _recipients(smtp) == Counter(emails)  # each exactly once
    assert smtp.count("connections") == 3
    assert Notification.objects.filter(kind="confirmation", status="sent").count() == 12
