"""The tenant API for outbound webhooks: endpoints (the secret shown once),
the delivery log, resend, recover, rotate-secret and the event catalog;
another tenant's endpoint is a 404."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tenants.models import Tenant, TenantMember
from tests.factories import TenantFactory, UserFactory
from webhooks.outbound.models import Delivery, DeliveryAttempt, EndpointSecret, OutboundMessage, WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "https://93.184.216.34/hooks"  # a public address literal: no DNS needed


def member(tenant: Tenant) -> Client:
    user = UserFactory.create()
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    return Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})


@pytest.fixture
def tenant() -> Tenant:
    return TenantFactory.create()


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return member(tenant)


def _create(api: Client, **fields: Any) -> dict[str, Any]:
    answer = api.post("/api/webhook-endpoints/", {"url": URL, **fields}, content_type="application/json")
    assert answer.status_code == 201, answer.content
    return answer.json()  # type: ignore[no-any-return]


def test_the_secret_is_shown_once_and_stored_encrypted(api: Client) -> None:
    created = _create(api, event_types=["order.paid"], description="ERP")
    assert created["secret"].startswith("whsec_") and created["event_types"] == ["order.paid"]
    shown = api.get(f"/api/webhook-endpoints/{created['id']}/").json()
    assert "secret" not in shown and shown["secret_hint"] == "whsec_…" + created["secret"][-4:]
    stored = EndpointSecret.objects.get()
    assert created["secret"] not in stored.encrypted


def test_unknown_event_types_and_bad_urls_are_400(api: Client) -> None:
    answer = api.post(
        "/api/webhook-endpoints/", {"url": URL, "event_types": ["order.exploded"]}, content_type="application/json"
    )
    assert answer.status_code == 400 and "order.exploded" in str(answer.json())
    answer = api.post("/api/webhook-endpoints/", {"url": "not a url"}, content_type="application/json")
    assert answer.status_code == 400
    for names in ([""], [None], ["order.paid", ""]):  # one flat message, as the schema documents 400s
        body = {"url": URL, "event_types": names}
        answer = api.post("/api/webhook-endpoints/", body, content_type="application/json")
        assert answer.status_code == 400 and answer.json() == {"event_types": ["event type names must not be blank"]}
    bad_items: list[tuple[list[Any], str]] = [([{}], "item 0: Not a valid string."), (["a\x00b"], "item 0: Null")]
    for items, says in bad_items:
        answer = api.post(
            "/api/webhook-endpoints/", {"url": URL, "event_types": items}, content_type="application/json"
        )
        assert answer.status_code == 400 and answer.json()["event_types"][0].startswith(says), answer.json()
    assert not WebhookEndpoint.objects.exists()


def test_another_tenants_endpoint_is_404(api: Client) -> None:
    theirs = _create(member(TenantFactory.create()))
    for path in ("", "deliveries/"):
        assert api.get(f"/api/webhook-endpoints/{theirs['id']}/{path}").status_code == 404
    assert api.post(f"/api/webhook-endpoints/{theirs['id']}/rotate-secret/").status_code == 404
    assert api.delete(f"/api/webhook-endpoints/{theirs['id']}/").status_code == 404
    assert api.get("/api/webhook-endpoints/").json()["results"] == []


def test_rotate_secret_keeps_the_old_one_for_24_hours(api: Client) -> None:
    created = _create(api)
    rotated = api.post(f"/api/webhook-endpoints/{created['id']}/rotate-secret/").json()["secret"]
    assert rotated != created["secret"]
    old, new = EndpointSecret.objects.order_by("created_at", "id")
    assert new.expires_at is None
    assert old.expires_at is not None and abs(old.expires_at - timezone.now() - timedelta(hours=24)) < timedelta(
        minutes=1
    )


def test_disable_with_a_reason_and_enable_again(api: Client) -> None:
    created = _create(api)
    url = f"/api/webhook-endpoints/{created['id']}/"
    off = api.patch(url, {"enabled": False, "disabled_reason": "migrating"}, content_type="application/json").json()
    assert (off["enabled"], off["disabled_reason"]) == (False, "migrating")
    on = api.patch(url, {"enabled": True}, content_type="application/json").json()
    assert (on["enabled"], on["disabled_reason"]) == (True, "")


def _failed_delivery(endpoint_id: int, tenant: Tenant, msg_id: str, *, days_ago: float = 0) -> Delivery:
    message = OutboundMessage.objects.create(
        msg_id=msg_id, tenant_id=tenant.pk, event_type="order.paid", payload={"type": "order.paid", "data": {}}
    )
    delivery = Delivery.objects.create(
        message=message,
        endpoint_id=endpoint_id,
        status=Delivery.Status.FAILED,
        attempts=8,
        created_at=timezone.now() - timedelta(days=days_ago),
    )
    DeliveryAttempt.objects.create(delivery=delivery, status_code=500, duration_ms=12, response="boom")
    return delivery


def test_the_delivery_log_resend_and_recover(api: Client, tenant: Tenant) -> None:
    created = _create(api)
    recent = _failed_delivery(created["id"], tenant, "msg_recent")
    old = _failed_delivery(created["id"], tenant, "msg_old", days_ago=3)
    log = api.get(f"/api/webhook-endpoints/{created['id']}/deliveries/?status=failed").json()["results"]
    assert [d["msg_id"] for d in log] == ["msg_recent", "msg_old"]
    assert log[0]["attempt_log"][0] | {"at": None} == {
        "at": None,
        "status_code": 500,
        "duration_ms": 12,
        "response": "boom",
        "error": "",
        "succeeded": False,
    }
    assert api.get(f"/api/webhook-endpoints/{created['id']}/deliveries/?status=lost").status_code == 400

    resent = api.post(
        f"/api/webhook-endpoints/{created['id']}/resend/", {"msg_id": "msg_old"}, content_type="application/json"
    )
    assert resent.status_code == 202 and resent.json() == {"queued": 1}
    old.refresh_from_db()
    assert (old.status, old.attempts) == (Delivery.Status.PENDING, 0)
    assert (
        api.post(
            f"/api/webhook-endpoints/{created['id']}/resend/", {"msg_id": "msg_nope"}, content_type="application/json"
        ).status_code
        == 404
    )

    since = (timezone.now() - timedelta(days=1)).isoformat()
    recovered = api.post(
        f"/api/webhook-endpoints/{created['id']}/recover/", {"since": since}, content_type="application/json"
    )
    assert recovered.json() == {"queued": 1}
    recent.refresh_from_db()
    assert recent.status == Delivery.Status.PENDING


def test_resend_to_a_disabled_endpoint_is_409(api: Client, tenant: Tenant) -> None:
    created = _create(api)
    _failed_delivery(created["id"], tenant, "msg_1")
    api.patch(f"/api/webhook-endpoints/{created['id']}/", {"enabled": False}, content_type="application/json")
    answer = api.post(
        f"/api/webhook-endpoints/{created['id']}/resend/", {"msg_id": "msg_1"}, content_type="application/json"
    )
    assert answer.status_code == 409 and "disabled" in answer.json()["detail"]


def test_the_event_catalog(api: Client) -> None:
    names = {t["name"] for t in api.get("/api/webhook-event-types/").json()}
    assert {"order.placed", "order.paid", "order.cancelled", "link.scanned"} <= names


@pytest.mark.django_db(transaction=True)
def test_an_update_racing_a_delete_is_404_and_does_not_bring_the_endpoint_back(tenant: Tenant) -> None:
    """The chaos fuzz found this one: PATCH and DELETE of one endpoint at once
    was a 500 (and saving would have inserted the deleted row again)."""
    api = member(tenant)
    created = _create(api, description="old")
    deleted, release = threading.Event(), threading.Event()

    def delete_and_hold() -> None:
        try:
            with transaction.atomic():
                WebhookEndpoint.objects.filter(pk=created["id"]).delete()
                deleted.set()
                release.wait(10)  # uncommitted while the PATCH reads the row and waits for its lock
        finally:
            connection.close()

    other = threading.Thread(target=delete_and_hold)
    other.start()
    assert deleted.wait(10)
    threading.Timer(0.5, release.set).start()
    answer = api.patch(
        f"/api/webhook-endpoints/{created['id']}/", {"description": "new"}, content_type="application/json"
    )
    other.join(10)
    assert answer.status_code == 404
    assert not WebhookEndpoint.objects.filter(pk=created["id"]).exists()
