"""No staff member can be double-booked, whatever the entry point: the
exclusion constraint decides between concurrent bookings of one slot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from appointments.models import Appointment, StaffMember
from appointments.services import SlotTaken, appointment_book, customer_find_or_create
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2031, 3, 3, 10, tzinfo=UTC)


def _book(tenant_id: int, staff: StaffMember | None, start: datetime, minutes: int = 30) -> Appointment:
    return appointment_book(
        tenant_id=tenant_id,
        customer=None,
        customer_name="Ada",
        customer_email="ada@example.com",
        service=None,
        service_name="Haircut",
        starts_at=start,
        ends_at=start + timedelta(minutes=minutes),
        staff=staff,
        source=Appointment.Source.API,
    )


def test_concurrent_bookings_of_one_slot_end_with_exactly_one_appointment() -> None:
    tenant = TenantFactory.create()
    staff = StaffMember.objects.create(tenant=tenant, name="Bob")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def attempt(offset: int) -> None:
        try:
            barrier.wait()
            # Overlapping, not identical, times: the constraint compares ranges.
            _book(tenant.pk, staff, START + timedelta(minutes=offset))
            outcomes.append("booked")
        except SlotTaken:
            outcomes.append("taken")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n * 3,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["booked"] + ["taken"] * 7
    assert Appointment.objects.filter(staff=staff).count() == 1


def test_the_database_refuses_an_overlap_written_around_the_services() -> None:
    tenant = TenantFactory.create()
    staff = StaffMember.objects.create(tenant=tenant, name="Bob")
    _book(tenant.pk, staff, START)
    with pytest.raises(IntegrityError, match="appointment_staff_no_overlap"), transaction.atomic():
        Appointment.objects.create(
            tenant=tenant,
            staff=staff,
            customer_name="X",
            service_name="Y",
            starts_at=START,
            ends_at=START + timedelta(hours=1),
        )


def test_back_to_back_and_cancelled_slots_are_free() -> None:
    tenant = TenantFactory.create()
    staff = StaffMember.objects.create(tenant=tenant, name="Bob")
    first = _book(tenant.pk, staff, START)
    _book(tenant.pk, staff, START + timedelta(minutes=30))  # [10:00, 10:30) and [10:30, 11:00) touch, not overlap
    Appointment.objects.filter(pk=first.pk).update(status=Appointment.Status.CANCELLED)
    _book(tenant.pk, staff, START)


def test_without_a_named_staff_member_the_first_free_one_is_booked() -> None:
    tenant = TenantFactory.create()
    bob = StaffMember.objects.create(tenant=tenant, name="Bob")
    ann = StaffMember.objects.create(tenant=tenant, name="Ann")
    assert _book(tenant.pk, None, START).staff == bob
    assert _book(tenant.pk, None, START).staff == ann
    with pytest.raises(SlotTaken):
        _book(tenant.pk, None, START + timedelta(minutes=10))


def test_one_customer_per_phone_number_however_it_was_written() -> None:
    tenant = TenantFactory.create()
    first = customer_find_or_create(tenant_id=tenant.pk, name="Max", phone="0151 12345678")
    again = customer_find_or_create(tenant_id=tenant.pk, email="max@example.com", phone="+49 (151) 1234-5678")
    assert again.pk == first.pk and again.phone == "+4915112345678" and again.email == "max@example.com"
    other_tenant = customer_find_or_create(tenant_id=TenantFactory.create().pk, phone="+4915112345678")
    assert other_tenant.pk != first.pk
