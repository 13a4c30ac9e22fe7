"""Appointments' outbound webhook events: published with each booking, cancel and
move, in its transaction (none when it rolls back), notice or no notice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction

from appointments.models import Appointment, StaffMember
from appointments.services import appointment_book, appointment_cancel, appointment_reschedule, customer_find_or_create
from outbox.models import OutboxMessage
from tests.factories import TenantFactory
from webhooks.outbound.catalog import event_type

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2031, 3, 3, 10, tzinfo=UTC)


class Rollback(Exception):
    pass


def rolled_back(action: Callable[[], Any]) -> None:
    with pytest.raises(Rollback), transaction.atomic():
        action()
        raise Rollback


def published(name: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(event_type=name).order_by("id"))


def shaped(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    registered = event_type(name)
    assert registered is not None and registered.shape is not None
    return registered.shape(payload)


def test_booking_moving_and_cancelling_publish_their_events() -> None:
    tenant = TenantFactory.create()
    staff = StaffMember.objects.create(tenant=tenant, name="Bob")
    customer = customer_find_or_create(tenant_id=tenant.pk, name="Ada", email="ada@example.com", phone="+49 30 1234567")

    def book() -> Appointment:
        return appointment_book(tenant_id=tenant.pk, customer=customer, customer_name="Ada",
                                customer_email="ada@example.com", service=None, service_name="Haircut",
                                starts_at=START, ends_at=START + timedelta(minutes=30), staff=staff,
                                source=Appointment.Source.API, notify=False)  # fmt: skip

    rolled_back(book)
    assert published("appointment.created") == []
    appointment = book()
    later = START + timedelta(days=1)

    def move() -> Appointment:
        return appointment_reschedule(
            appointment=appointment, starts_at=later, ends_at=later + timedelta(minutes=45), source="api"
        )

    def cancel() -> bool:
        return appointment_cancel(appointment=appointment, source="api", reason="ill")

    rolled_back(move)
    rolled_back(cancel)
    assert published("appointment.rescheduled") == published("appointment.cancelled") == []
    move()
    cancel()

    base = {"appointment_id": appointment.pk, "status": "booked", "starts_at": "2031-03-03T10:00:00+00:00",
            "ends_at": "2031-03-03T10:30:00+00:00", "service_name": "Haircut", "staff_id": staff.pk,
            "staff_name": "Bob", "customer_name": "Ada", "customer_email": "ada@example.com",
            "customer_phone": "+49301234567", "source": "api"}  # fmt: skip
    moved = {"starts_at": "2031-03-04T10:00:00+00:00", "ends_at": "2031-03-04T10:45:00+00:00"}
    [created] = published("appointment.created")
    [rescheduled] = published("appointment.rescheduled")
    [cancelled] = published("appointment.cancelled")
    assert {created.tenant_id, rescheduled.tenant_id, cancelled.tenant_id} == {tenant.pk}
    assert created.payload == shaped("appointment.created", created.payload) == base
    assert rescheduled.payload == shaped("appointment.rescheduled", rescheduled.payload) == {
        **base, **moved, "previous_starts_at": base["starts_at"], "previous_ends_at": base["ends_at"]}  # fmt: skip
    assert cancelled.payload == shaped("appointment.cancelled", cancelled.payload) == {
        **base, **moved, "status": "cancelled", "reason": "ill"}  # fmt: skip
    # Cancelling again changes nothing and announces nothing.
    assert appointment_cancel(appointment=appointment, source="api") is False
    assert len(published("appointment.cancelled")) == 1
