"""Retell webhooks over real HTTP, signed by Retell's own SDK, processed by a
real relay and worker: an ended, analysed call books an appointment (or
records why not), and the caller is found again by phone."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from redis import Redis
from retell.lib.webhook_auth import verify as retell_verify

from appointments.models import Appointment, Call, Customer, OpeningHours, Service, StaffMember
from outbox.models import OutboxMessage
from tenants.models import Tenant
from tests.appointments.helpers import RETELL_KEY, give_secrets, post, process, retell_event, retell_signed
from tests.factories import TenantFactory
from tests.marketing.helpers import fast_forward
from webhooks.models import WebhookEvent
from webhooks.providers.retell import signature

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant() -> Tenant:
    tenant = TenantFactory.create(slug="barber-bob", name="Barber Bob")
    give_secrets(tenant)
    haircut = Service.objects.create(tenant=tenant, name="Haircut", duration_minutes=45)
    staff = StaffMember.objects.create(tenant=tenant, name="Bob")
    staff.services.add(haircut)
    return tenant


@pytest.fixture(autouse=True)
def _mail(smtp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_URL", smtp_server.url)


def _url(live_server: Any) -> str:
    return f"{live_server.url}/api/webhooks/voice/barber-bob/"


def _slot(days: int = 2, hour: int = 10) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def _wants(start: datetime, service: str = "Haircut", **extra: Any) -> dict[str, Any]:
    return {
        "appointment_requested": True,
        "service": service,
        "appointment_start": start.isoformat(),
        "customer_name": "Max Mustermann",
        "customer_email": "max@example.com",
        **extra,
    }


def _send(live_server: Any, event: str, call_id: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    body = retell_event(event, call_id=call_id, **kwargs)
    return post(_url(live_server), body, retell_signed(body))


def test_our_verification_and_retells_sdk_agree() -> None:
    body = retell_event("call_ended", call_id="abc")
    stamp = int(time.time() * 1000)
    ours = signature(RETELL_KEY, body, stamp)
    assert retell_verify(body.decode(), RETELL_KEY, ours)  # Retell.verify accepts what we would sign
    assert retell_signed(body, timestamp_ms=stamp)["x-retell-signature"] == ours


def test_an_analysed_call_books_the_slot_and_the_caller_gets_a_confirmation(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant
) -> None:
    call_id = f"call_{uuid.uuid4().hex}"
    start = _slot()
    assert _send(live_server, "call_started", call_id)[0] == 200
    assert _send(live_server, "call_ended", call_id, from_number="+49 151 12345678")[0] == 200
    process()
    call = Call.objects.get()
    assert (call.outcome, call.call_status, call.from_number) == ("pending", "ended", "+49 151 12345678")

    assert _send(live_server, "call_analyzed", call_id, analysis=_wants(start))[0] == 200
    process()
    call.refresh_from_db()
    appointment = Appointment.objects.get()
    assert (call.outcome, call.appointment, call.customer) == ("booked", appointment, appointment.customer)
    assert call.summary == "The caller booked an appointment."
    assert (appointment.source, appointment.starts_at, appointment.ends_at) == (
        "voice",
        start,
        start + timedelta(minutes=45),
    )
    assert appointment.staff == StaffMember.objects.get(name="Bob")
    customer = Customer.objects.get()
    assert (customer.phone, customer.name, customer.email) == ("+4915112345678", "Max Mustermann", "max@example.com")
    [message] = smtp_server.messages
    assert message["To"] == "max@example.com" and message["Subject"].startswith("Confirmed: Haircut")
    assert WebhookEvent.objects.filter(status="processed").count() == 3


def test_a_call_for_a_taken_slot_records_the_reason_and_creates_nothing(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant
) -> None:
    start = _slot()
    assert _send(live_server, "call_analyzed", "call_first", analysis=_wants(start))[0] == 200
    process()
    # A second caller (another number) asks for an overlapping time with the only staff member.
    overlapping = _wants(start + timedelta(minutes=15), customer_email="other@example.com")
    assert (
        _send(live_server, "call_analyzed", "call_second", from_number="+4917699999999", analysis=overlapping)[0] == 200
    )
    process()
    second = Call.objects.get(call_id="call_second")
    assert second.outcome == "slot_taken" and "no staff member is free" in second.outcome_detail
    assert second.appointment is None
    assert Appointment.objects.count() == 1 and len(smtp_server.messages) == 1
    assert second.customer is not None and second.customer.phone == "+4917699999999"  # the caller is still known


@pytest.mark.parametrize(
    ("analysis", "outcome"),
    [
        (_wants(_slot(), service="Massage"), "unknown_service"),
        (_wants(_slot(hour=20)), "outside_hours"),
        ({"appointment_requested": False}, "no_request"),
        (_wants(_slot(), appointment_start="next tuesday-ish"), "invalid_request"),
    ],
)
def test_a_call_that_cannot_book_says_why(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant, analysis: dict[str, Any], outcome: str
) -> None:
    for weekday in range(7):
        OpeningHours.objects.create(tenant=tenant, weekday=weekday, opens=clock(9), closes=clock(18))
    assert _send(live_server, "call_analyzed", "call_x", analysis=analysis)[0] == 200
    process()
    assert Call.objects.get().outcome == outcome
    assert not Appointment.objects.exists() and smtp_server.messages == []


def test_a_repeated_event_does_nothing_twice(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant
) -> None:
    body = retell_event("call_analyzed", call_id="call_dup", analysis=_wants(_slot()))
    assert post(_url(live_server), body, retell_signed(body))[1]["status"] == "stored"
    # Retell retries with a fresh signature: the same event, a duplicate.
    assert post(_url(live_server), body, retell_signed(body))[1]["status"] == "duplicate"
    process()
    # call_ended arriving after call_analyzed decides nothing again.
    assert _send(live_server, "call_ended", "call_dup", analysis=_wants(_slot(hour=11)))[0] == 200
    process()
    assert Appointment.objects.count() == 1 and len(smtp_server.messages) == 1


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing", {}),
        ("malformed", {"x-retell-signature": "d=abc"}),
        ("wrong key", None),
        ("six minutes old", "stale"),
        ("six minutes ahead", "future"),
    ],
)
def test_bad_signatures_and_stale_timestamps_are_refused_and_store_nothing(
    live_server: Any, redis_conn: Redis, tenant: Tenant, case: str, headers: Any
) -> None:
    body = retell_event("call_ended", call_id="call_bad")
    now_ms = int(time.time() * 1000)
    if headers is None:
        headers = retell_signed(body, "key_" + "not-the-tenants-key-at-all")
    elif headers == "stale":
        headers = retell_signed(body, timestamp_ms=now_ms - 360_000)
    elif headers == "future":
        headers = retell_signed(body, timestamp_ms=now_ms + 360_000)
    status, answer = post(_url(live_server), body, headers)
    assert status == 400, (case, answer)
    assert not WebhookEvent.objects.exists() and not OutboxMessage.objects.exists()


def test_an_unknown_event_is_stored_and_ignored(live_server: Any, redis_conn: Redis, tenant: Tenant) -> None:
    assert _send(live_server, "transcript_updated", "call_t")[1] == {"status": "stored", "event": "ignored"}
    assert not Call.objects.exists()


def test_a_failing_call_ended_job_rolls_everything_back_and_retries(
    live_server: Any, redis_conn: Redis, smtp_server: Any, tenant: Tenant
) -> None:
    """A failure in the middle (here: the database refuses the outcome) leaves
    no customer, no appointment and no confirmation behind; the retry, once
    the fault is gone, books once."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_booked() RETURNS trigger AS $$ BEGIN"
            " IF NEW.outcome = 'booked' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$"
            " LANGUAGE plpgsql;"
            " CREATE TRIGGER refuse_booked BEFORE UPDATE ON appointments_call"
            " FOR EACH ROW EXECUTE FUNCTION refuse_booked();"
        )
    assert _send(live_server, "call_analyzed", "call_fail", analysis=_wants(_slot()))[0] == 200
    process()
    assert not Appointment.objects.exists() and not Customer.objects.exists() and not Call.objects.exists()
    assert smtp_server.messages == []
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER refuse_booked ON appointments_call; DROP FUNCTION refuse_booked();")
    # The delivery job's retry (after its backoff) runs once it is due.
    assert fast_forward(redis_conn, "high") == 1
    process()
    assert Call.objects.get().outcome == "booked" and Appointment.objects.count() == 1
    assert len(smtp_server.messages) == 1
