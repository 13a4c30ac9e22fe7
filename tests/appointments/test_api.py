"""The bookings API: tenant-scoped CRUD of customers, services and staff;
appointments listed with filters, booked (409 on a taken slot), cancelled
and moved; another tenant's ids are 404s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from appointments.models import Appointment, Customer, OpeningHours, Service, StaffMember
from outbox.models import OutboxMessage
from tenants.models import Tenant, TenantMember
from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _member(tenant: Tenant) -> Client:
    user = UserFactory.create()
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    return Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})


def _slot(hour: int = 10, days: int = 3) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


@pytest.fixture
def tenant() -> Tenant:
    return TenantFactory.create()


@pytest.fixture
def client(tenant: Tenant) -> Client:
    return _member(tenant)


def _setup(client: Client) -> dict[str, int]:
    service = client.post(
        "/api/services/", {"name": "Haircut", "duration_minutes": 45}, content_type="application/json"
    )
    assert service.status_code == 201, service.json()
    staff = client.post(
        "/api/staff/", {"name": "Bob", "services": [service.json()["id"]]}, content_type="application/json"
    )
    assert staff.status_code == 201, staff.json()
    customer = client.post(
        "/api/customers/",
        {"name": "Ada", "email": "ada@example.com", "phone": "030 1234567"},
        content_type="application/json",
    )
    assert customer.status_code == 201, customer.json()
    assert customer.json()["phone"] == "+49301234567"  # E.164, read in PHONE_DEFAULT_REGION
    return {"service": service.json()["id"], "staff": staff.json()["id"], "customer": customer.json()["id"]}


def _book(client: Client, ids: dict[str, int], start: datetime, **extra: Any) -> Any:
    body = {"customer": ids["customer"], "service": ids["service"], "starts_at": start.isoformat(), **extra}
    return client.post("/api/appointments/", body, content_type="application/json")


def test_book_then_a_taken_slot_is_a_409_and_nothing_is_queued_for_it(client: Client, tenant: Tenant) -> None:
    ids = _setup(client)
    start = _slot()
    first = _book(client, ids, start)
    assert first.status_code == 201, first.json()
    body = first.json()
    assert (body["status"], body["source"], body["staff"]) == ("booked", "api", ids["staff"])
    assert body["ends_at"].startswith((start + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M"))
    assert OutboxMessage.objects.filter(event_type="appointment.notify").count() == 1  # the confirmation

    clash = _book(client, ids, start + timedelta(minutes=30))
    assert clash.status_code == 409 and clash.json()["reason"] == "slot_taken"
    assert Appointment.objects.count() == 1
    assert OutboxMessage.objects.filter(event_type="appointment.notify").count() == 1


def test_list_filters_and_bad_filters(client: Client, tenant: Tenant) -> None:
    ids = _setup(client)
    early, late = _slot(9), _slot(15)
    a = _book(client, ids, early).json()
    _book(client, ids, late)
    assert (
        client.post(
            f"/api/appointments/{a['id']}/cancel/", {"reason": "ill"}, content_type="application/json"
        ).status_code
        == 200
    )
    listed = client.get("/api/appointments/").json()
    assert [r["starts_at"][:13] for r in listed["results"]] == [early.isoformat()[:13], late.isoformat()[:13]]
    assert [r["status"] for r in client.get("/api/appointments/?status=booked").json()["results"]] == ["booked"]
    window = client.get("/api/appointments/", {"from": (early + timedelta(hours=1)).isoformat()}).json()
    assert len(window["results"]) == 1
    assert client.get(f"/api/appointments/?staff={ids['staff']}").json()["count"] == 2
    bad = client.get("/api/appointments/?status=maybe&staff=bob&from=yesterday")
    assert bad.status_code == 400 and set(bad.json()) == {"status", "staff", "from"}


def test_cancel_and_reschedule(client: Client, tenant: Tenant) -> None:
    ids = _setup(client)
    first = _book(client, ids, _slot(9)).json()
    second = _book(client, ids, _slot(12)).json()
    moved = client.post(
        f"/api/appointments/{first['id']}/reschedule/",
        {"starts_at": _slot(14).isoformat()},
        content_type="application/json",
    )
    assert moved.status_code == 200 and moved.json()["starts_at"].startswith(_slot(14).strftime("%Y-%m-%dT%H"))
    assert moved.json()["ends_at"].startswith(_slot(14).strftime("%Y-%m-%dT14:45"))
    onto_taken = client.post(
        f"/api/appointments/{first['id']}/reschedule/",
        {"starts_at": _slot(12).isoformat()},
        content_type="application/json",
    )
    assert onto_taken.status_code == 409 and onto_taken.json()["reason"] == "slot_taken"
    assert (
        client.post(f"/api/appointments/{second['id']}/cancel/", {}, content_type="application/json").status_code == 200
    )
    again = client.post(f"/api/appointments/{second['id']}/cancel/", {}, content_type="application/json")
    assert again.status_code == 409
    cancelled_move = client.post(
        f"/api/appointments/{second['id']}/reschedule/",
        {"starts_at": _slot(16).isoformat()},
        content_type="application/json",
    )
    assert cancelled_move.status_code == 409 and cancelled_move.json()["reason"] == "not_live"
    notices = OutboxMessage.objects.filter(event_type="appointment.notify").order_by("pk")
    kinds = list(notices.values_list("payload__kind", flat=True))
    assert kinds == ["confirmation", "confirmation", "reschedule", "cancellation"]


def test_outside_opening_hours_is_a_400(client: Client, tenant: Tenant) -> None:
    ids = _setup(client)
    OpeningHours.objects.create(tenant=tenant, weekday=_slot().weekday(), opens=clock(9), closes=clock(16, 30))
    assert _book(client, ids, _slot(16, days=3)).status_code == 400  # 16:00 + 45 min runs past 16:30
    assert _book(client, ids, _slot(8, days=3)).status_code == 400
    assert _book(client, ids, _slot(10, days=3)).status_code == 201


def test_another_tenants_ids_are_404s_and_invalid_references(client: Client, tenant: Tenant) -> None:
    ids = _setup(client)
    theirs = TenantFactory.create()
    their_customer = Customer.objects.create(tenant=theirs, name="Eve")
    their_service = Service.objects.create(tenant=theirs, name="Secret")
    their_staff = StaffMember.objects.create(tenant=theirs, name="Mallory")
    _book(client, ids, _slot())
    their_appt = Appointment.objects.create(
        tenant=theirs, customer_name="Eve", service_name="Secret", starts_at=_slot(), ends_at=_slot(11)
    )
    for url in (
        f"/api/customers/{their_customer.pk}/",
        f"/api/services/{their_service.pk}/",
        f"/api/staff/{their_staff.pk}/",
        f"/api/appointments/{their_appt.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(f"/api/appointments/{their_appt.pk}/cancel/", {}, content_type="application/json").status_code
        == 404
    )
    assert client.get("/api/appointments/").json()["count"] == 1
    crossed = _book(client, {**ids, "customer": their_customer.pk, "service": their_service.pk}, _slot(13))
    assert crossed.status_code == 400 and set(crossed.json()) == {"customer", "service"}
    staff_crossed = client.post(
        "/api/staff/", {"name": "X", "services": [their_service.pk]}, content_type="application/json"
    )
    assert staff_crossed.status_code == 400
    their_appt.refresh_from_db()
    assert their_appt.status == "booked"


def test_one_customer_per_phone_number(client: Client, tenant: Tenant) -> None:
    _setup(client)
    again = client.post(
        "/api/customers/", {"name": "Ada 2", "phone": "+49 30 1234567"}, content_type="application/json"
    )
    assert again.status_code == 400 and "already has +49301234567" in again.json()["phone"][0]
    bad = client.post("/api/customers/", {"name": "Z", "phone": "call me maybe"}, content_type="application/json")
    assert bad.status_code == 400


@pytest.mark.parametrize("path", ["/api/services/", "/api/staff/"])
def test_a_calendar_id_is_unique_per_tenant(client: Client, tenant: Tenant, path: str) -> None:
    body: dict[str, Any] = {"name": "A", "external_id": "ext-1"}
    if path == "/api/services/":
        body["duration_minutes"] = 30
    first = client.post(path, body, content_type="application/json")
    assert first.status_code == 201, first.json()
    second = client.post(path, {**body, "external_id": "ext-2"}, content_type="application/json")
    taken = client.patch(f"{path}{second.json()['id']}/", {"external_id": "ext-1"}, content_type="application/json")
    assert taken.status_code == 400 and "external_id" in taken.json()
    same = client.patch(f"{path}{first.json()['id']}/", {"external_id": "ext-1"}, content_type="application/json")
    assert same.status_code == 200
    other = _member(TenantFactory.create())  # another tenant may use the same id
    assert other.post(path, body, content_type="application/json").status_code == 201


def test_options_on_cancel_and_reschedule_describe_them(client: Client, tenant: Tenant) -> None:
    ids = _setup(client)
    booked = client.post(
        "/api/appointments/",
        {
            "customer": ids["customer"],
            "service": ids["service"],
            "staff": ids["staff"],
            "starts_at": _slot().isoformat(),
        },
        content_type="application/json",
    )
    assert booked.status_code == 201, booked.json()
    for action in ("cancel", "reschedule"):
        answer = client.options(f"/api/appointments/{booked.json()['id']}/{action}/")
        assert answer.status_code == 200, answer.content


def test_the_schema_documents_the_bookings_api(client: Client) -> None:
    schema = client.get("/api/schema/?format=json").json()
    for path in (
        "/api/appointments/",
        "/api/appointments/{id}/cancel/",
        "/api/appointments/{id}/reschedule/",
        "/api/customers/",
        "/api/services/{id}/",
        "/api/staff/",
    ):
        assert path in schema["paths"], path
    assert "409" in schema["paths"]["/api/appointments/"]["post"]["responses"]
    assert "/api/webhooks/calendar/{account}/" not in schema["paths"]
