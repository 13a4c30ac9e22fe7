"""Cal.com webhooks over real HTTP, signed as Cal.com signs them, processed
by a real relay and worker; the confirmation reaches a real SMTP server."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from icalendar import Calendar
from redis import Redis

from appointments.models import Appointment, Customer, ExternalBooking, Notification, Service, StaffMember
from outbox.models import OutboxMessage
from tenants.models import Tenant
from tests.appointments.helpers import cal_event, cal_signed, give_secrets, new_uid, post, process
from tests.factories import TenantFactory
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant() -> Tenant:
    tenant = TenantFactory.create(slug="salon-nova", name="Salon Nova")
    give_secrets(tenant)
    return tenant


@pytest.fixture(autouse=True)
def _mail(smtp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_URL", smtp_server.url)  # the worker e-mails through the test SMTP server


def _start(days: int = 3, hour: int = 10) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def _url(live_server: Any, slug: str = "salon-nova") -> str:
    return f"{live_server.url}/api/webhooks/calendar/{slug}/"


def _ics(message: Any) -> Any:
    [part] = [p for p in message.iter_attachments() if p.get_filename() == "appointment.ics"]
    return Calendar.from_ical(part.get_payload(decode=True))


def test_a_booking_becomes_an_appointment_and_a_confirmation_with_a_valid_ics(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant
) -> None:
    starts = _start()
    uid = new_uid()
    body = cal_event("BOOKING_CREATED", uid=uid, starts_at=starts)
    assert post(_url(live_server), body, cal_signed(body)) == (200, {"status": "stored", "event": "received"})
    process()

    appointment = Appointment.objects.get()
    assert (appointment.status, appointment.source, appointment.starts_at) == ("booked", "calendar", starts)
    assert appointment.ends_at == starts + timedelta(minutes=30) and appointment.tenant == tenant
    assert appointment.customer == Customer.objects.get(phone="+49301234567", email="jane.doe@example.com")
    assert appointment.staff == StaffMember.objects.get(external_id="5", name="Pro Example")
    assert appointment.service == Service.objects.get(external_id="7", name="Consultation", duration_minutes=30)
    assert ExternalBooking.objects.get().uid == uid
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED

    [message] = smtp_server.messages
    assert message["To"] == "jane.doe@example.com" and message["Subject"].startswith("Confirmed: Consultation")
    assert "Hello Jane Doe" in message.get_body(("plain",)).get_content()
    assert "Salon Nova" in message.get_body(("html",)).get_content()
    calendar = _ics(message)
    assert str(calendar["method"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == starts and event.decoded("dtend") == starts + timedelta(minutes=30)
    assert str(event["uid"]).startswith(f"appointment-{appointment.pk}@")
    [sent] = Notification.objects.all()
    assert (sent.kind, sent.status, sent.starts_at, sent.detail) == (
        "confirmation",
        "sent",
        starts,
        "jane.doe@example.com",
    )


def test_a_duplicate_delivery_is_a_200_with_no_second_effect(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant
) -> None:
    body = cal_event("BOOKING_CREATED", uid=new_uid(), starts_at=_start())
    assert post(_url(live_server), body, cal_signed(body))[1]["status"] == "stored"
    process()
    assert post(_url(live_server), body, cal_signed(body)) == (200, {"status": "duplicate", "event": "processed"})
    process()
    assert Appointment.objects.count() == 1 and len(smtp_server.messages) == 1
    assert WebhookEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "slug", "headers", "status"),
    [
        ("unknown tenant", "nobody-here", None, 404),
        ("missing signature", "salon-nova", {}, 400),
        ("wrong secret", "salon-nova", cal_signed(b"x", "another-secret-entirely"), 400),
        ("signature of another body", "salon-nova", cal_signed(b"{}"), 400),
    ],
)
def test_unknown_tenants_and_bad_signatures_are_refused_and_store_nothing(
    live_server: Any, redis_conn: Redis, tenant: Tenant, case: str, slug: str, headers: Any, status: int
) -> None:
    body = cal_event("BOOKING_CREATED", uid=new_uid(), starts_at=_start())
    answer = post(_url(live_server, slug), body, cal_signed(body) if headers is None else headers)
    assert answer[0] == status, case
    assert "error" in answer[1]
    assert not WebhookEvent.objects.exists() and not OutboxMessage.objects.exists()


def test_a_tenant_without_a_calendar_secret_has_no_endpoint(live_server: Any, redis_conn: Redis) -> None:
    TenantFactory.create(slug="no-secret")
    body = cal_event("BOOKING_CREATED", uid=new_uid(), starts_at=_start())
    assert post(_url(live_server, "no-secret"), body, cal_signed(body))[0] == 404
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("malformed JSON", b'{"triggerEvent": "BOOKING_CREATED", '),
        ("no trigger", b'{"payload": {}}'),
        ("no uid", cal_event("BOOKING_CREATED", uid="", starts_at=datetime(2030, 1, 1, 10, tzinfo=UTC))),
        (
            "reschedule without its original",
            cal_event("BOOKING_RESCHEDULED", uid="n1", starts_at=datetime(2030, 1, 1, tzinfo=UTC)),
        ),
        (
            "no attendees",
            cal_event("BOOKING_CREATED", uid="x", starts_at=datetime(2030, 1, 1, tzinfo=UTC)).replace(
                b'"attendees": [{', b'"attendees": [], "x": [{'
            ),
        ),
        (
            "end before start",
            cal_event("BOOKING_CREATED", uid="y", starts_at=datetime(2030, 1, 1, tzinfo=UTC), minutes=-30),
        ),
    ],
)
def test_a_payload_missing_what_its_trigger_needs_is_a_400_that_stores_nothing(
    live_server: Any, redis_conn: Redis, tenant: Tenant, case: str, body: bytes
) -> None:
    status, answer = post(_url(live_server), body, cal_signed(body))
    assert status == 400, (case, answer)
    assert not WebhookEvent.objects.exists() and not OutboxMessage.objects.exists()


def test_an_unknown_trigger_is_stored_and_ignored(live_server: Any, redis_conn: Redis, tenant: Tenant) -> None:
    body = b'{"triggerEvent": "PING", "createdAt": "2026-12-05T10:00:00Z", "payload": {"type": "Test"}}'
    assert post(_url(live_server), body, cal_signed(body)) == (200, {"status": "stored", "event": "ignored"})
    assert WebhookEvent.objects.get().account == str(tenant.pk)
    assert not OutboxMessage.objects.exists()


def test_a_rotated_secret_and_its_predecessor_are_both_accepted_during_the_window(
    live_server: Any, redis_conn: Redis, tenant: Tenant
) -> None:
    from appointments.services import provider_secret_set

    provider_secret_set(tenant=tenant, provider="calcom", secret="the-new-secret-after-rotation")
    for n, secret in enumerate(("the-new-secret-after-rotation", "cal-webhook-secret-0123456789")):
        body = cal_event("BOOKING_CREATED", uid=f"rot{n}", starts_at=_start(hour=10 + n))
        assert post(_url(live_server), body, cal_signed(body, secret))[0] == 200
    # Once the window closes, the old one is refused.
    from appointments.models import ProviderSecret

    ProviderSecret.objects.filter(expires_at__isnull=False).update(expires_at=datetime.now(UTC))
    body = cal_event("BOOKING_CREATED", uid="rot-late", starts_at=_start(hour=14))
    assert post(_url(live_server), body, cal_signed(body, "cal-webhook-secret-0123456789"))[0] == 400


# ---- any order of delivery ends in the same state ------------------------------------


def _chain(start: datetime) -> dict[str, bytes]:
    """One booking's life: created, moved (a new uid), then cancelled."""
    first, second = new_uid(), new_uid()
    moved = start + timedelta(days=1)
    return {
        "created": cal_event("BOOKING_CREATED", uid=first, starts_at=start),
        "rescheduled": cal_event("BOOKING_RESCHEDULED", uid=second, previous_uid=first, starts_at=moved),
        "cancelled": cal_event("BOOKING_CANCELLED", uid=second, starts_at=moved, reason="Feeling better"),
    }


def _deliver_in(live_server: Any, order: tuple[str, ...], events: dict[str, bytes]) -> None:
    for name in order:
        body = events[name]
        assert post(_url(live_server), body, cal_signed(body))[0] == 200
        process()  # each processed before the next arrives: the order is the delivery order


@pytest.mark.parametrize("order", list(itertools.permutations(["created", "rescheduled", "cancelled"])))
def test_create_reschedule_cancel_in_any_order_leaves_no_live_appointment(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant, order: tuple[str, ...]
) -> None:
    _deliver_in(live_server, order, _chain(_start()))
    assert not Appointment.objects.filter(status=Appointment.Status.BOOKED).exists()
    assert Appointment.objects.exists()
    assert WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSED).count() == 3
    # No reminders will ever go out for it; every notice sent was about a real state.
    sent = [m["Subject"].split(":")[0] for m in smtp_server.messages]
    assert set(sent) <= {"Confirmed", "Moved", "Cancelled"}
    if order[0] == "created":
        assert sent[-1] == "Cancelled"  # told it was booked, so told it is off
        cancel = smtp_server.messages[-1]
        assert str(_ics(cancel)["method"]) == "CANCEL"


@pytest.mark.parametrize("order", list(itertools.permutations(["created", "rescheduled"])))
def test_create_and_reschedule_in_either_order_leave_one_appointment_at_the_new_time(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant, order: tuple[str, ...]
) -> None:
    start = _start()
    events = _chain(start)
    _deliver_in(live_server, order, events)
    [appointment] = Appointment.objects.filter(status=Appointment.Status.BOOKED)
    assert appointment.starts_at == start + timedelta(days=1)
    assert Appointment.objects.count() == 1
    assert ExternalBooking.objects.filter(appointment=appointment).count() == 2
    subjects = [m["Subject"].split(":")[0] for m in smtp_server.messages]
    assert subjects == (["Confirmed", "Moved"] if order[0] == "created" else ["Confirmed"])
