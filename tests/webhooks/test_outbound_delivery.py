"""Outbound deliveries end to end: real relay, real workers, a loopback
receiver verifying each delivery with the standardwebhooks library."""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from standardwebhooks import Webhook

from orders.models import Order
from outbox.services import outbox_relay_drain
from tests.factories import TenantFactory
from tests.queueing.conftest import start_worker
from tests.webhooks.outbound_helpers import endpoint, place_order, settle
from tests.webhooks.receiver import Receiver, start
from webhooks.outbound.models import Delivery, DeliveryAttempt, EndpointSecret, OutboundMessage, WebhookEndpoint
from webhooks.outbound.services import SCHEDULE, endpoint_rotate_secret

pytestmark = pytest.mark.django_db(transaction=True)

PAYMENT_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _pay(live_server: Any, order: Order) -> None:
    """Pay ``order`` through the payment webhook (Standard Webhooks, signed by the provider)."""
    body = json.dumps(
        {
            "type": "payment.succeeded",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"order_id": order.pk, "amount": str(order.total), "currency": "USD"},
        }
    )
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(PAYMENT_SECRET).sign(msg_id, now, body),
    }
    request = urllib.request.Request(f"{live_server.url}/api/webhooks/payments/", body.encode(), headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own live server
        assert response.status == 200


def test_an_order_paid_by_webhook_reaches_each_subscribed_endpoint_once(
    live_server: Any, receiver: Receiver, settings: Any, redis_conn: Any
) -> None:
    settings.PAYMENT_WEBHOOK_SECRET = PAYMENT_SECRET
    tenant = TenantFactory.create()
    _, secret_a = endpoint(tenant, receiver.url + "?a", "order.paid")
    _, secret_b = endpoint(tenant, receiver.url + "?b", "order.paid", "order.cancelled")
    endpoint(tenant, receiver.url + "?c", "order.cancelled")  # not subscribed to order.paid
    other = TenantFactory.create()
    endpoint(other, receiver.url + "?other")  # every type, but another tenant
    receiver.secrets = [secret_a, secret_b]
    order = place_order(tenant)
    _pay(live_server, order)
    settle()

    paid = [r for r in receiver.ok() if r.payload["type"] == "order.paid"]
    assert sorted(r.verified_with for r in paid) == [[0], [1]]  # one each, each with its own secret
    assert all(r.payload["data"]["order_id"] == order.pk and r.payload["version"] == 1 for r in paid)
    assert paid[0].headers["webhook-id"] == paid[1].headers["webhook-id"]  # one message, two deliveries
    assert paid[0].headers["user-agent"].startswith("Vito-Webhooks/")
    # Nothing of this tenant's reached the other tenant's endpoint (it subscribed to every type).
    assert not [r for r in receiver.received if r.payload["data"].get("order_id") == order.pk and not r.verified_with]
    attempts = DeliveryAttempt.objects.filter(delivery__message__event_type="order.paid")
    assert attempts.count() == 2 and all(a.succeeded and a.status_code == 200 for a in attempts)


def test_a_rolled_back_change_is_never_delivered(receiver: Receiver, redis_conn: Any) -> None:
    tenant = TenantFactory.create()
    _, receiver_secret = endpoint(tenant, receiver.url)
    receiver.secrets = [receiver_secret]
    with pytest.raises(RuntimeError), transaction.atomic():
        place_order(tenant)
        raise RuntimeError("the request failed after placing the order")
    committed = place_order(tenant)
    settle()
    got = [r.payload for r in receiver.ok()]
    assert [(p["type"], p["data"]["order_id"]) for p in got] == [("order.placed", committed.pk)]
    assert OutboundMessage.objects.count() == 1


def test_a_receiver_down_for_a_while_gets_every_message_after_it_is_back(
    receiver: Receiver, workers: list[Any], redis_conn: Any
) -> None:
    """On the 1,000× clock the schedule is 0, 5 ms, 0.3 s, 1.8 s, 7.2 s…: the
    receiver answers 503 until every message has failed twice, then 200 (counted
    in attempts, not seconds: a worker slow to start must not find it back already)."""
    tenant = TenantFactory.create()
    _, receiver_secret = endpoint(tenant, receiver.url, "order.placed")
    receiver.secrets = [receiver_secret]
    receiver.answer = 503
    orders = [place_order(tenant) for _ in range(3)]
    workers.append(start_worker("default"))
    outbox_relay_drain()
    deadline = time.monotonic() + 90
    while Delivery.objects.exclude(status=Delivery.Status.SUCCEEDED).exists() or Delivery.objects.count() < 3:
        assert time.monotonic() < deadline, list(Delivery.objects.values("status", "attempts"))
        failures = Delivery.objects.annotate(n=Count("attempt_log", filter=Q(attempt_log__succeeded=False)))
        per_message = list(failures.values_list("n", flat=True))
        if receiver.answer != 200 and len(per_message) == 3 and min(per_message) >= 2:
            receiver.answer = 200
        outbox_relay_drain()
        time.sleep(0.1)

    assert sorted(r.payload["data"]["order_id"] for r in receiver.ok()) == [o.pk for o in orders]
    for delivery in Delivery.objects.all():
        log = list(delivery.attempt_log.order_by("at"))
        assert len(log) >= 2 and [a.succeeded for a in log] == [False] * (len(log) - 1) + [True]
        assert all(a.status_code == 503 and a.response == "not now" for a in log[:-1])
        # Each retry waited at least its step of Svix's schedule (scaled), counted from the failure before it.
        for step, (before, after) in enumerate(itertools.pairwise(log), start=1):
            assert (after.at - before.at).total_seconds() >= SCHEDULE[step] * 0.001


def test_a_rotated_secret_keeps_deliveries_verifiable_with_either(receiver: Receiver, redis_conn: Any) -> None:
    tenant = TenantFactory.create()
    hook, old = endpoint(tenant, receiver.url, "order.placed")
    new = endpoint_rotate_secret(hook)
    receiver.secrets = [old, new]
    place_order(tenant)
    settle()
    (during,) = receiver.ok()
    assert during.verified_with == [0, 1]  # a receiver holding either secret accepts it
    assert len(during.headers["webhook-signature"].split()) == 2

    # After the 24 h window only the new secret signs.
    EndpointSecret.objects.filter(endpoint=hook, expires_at__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    place_order(tenant)
    settle()
    after = receiver.ok()[-1]
    assert after.verified_with == [1] and len(after.headers["webhook-signature"].split()) == 1


def test_410_gone_disables_the_endpoint_and_emails_the_owner_once(
    receiver: Receiver, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, redis_conn: Any
) -> None:
    monkeypatch.setenv("EMAIL_URL", smtp_server.url)
    tenant = TenantFactory.create(owner_email="owner@example.com")
    hook, _ = endpoint(tenant, receiver.url, "order.placed")
    receiver.answer = 410
    place_order(tenant)
    place_order(tenant)
    settle()
    hook.refresh_from_db()
    assert not hook.enabled and "410" in hook.disabled_reason
    assert len(receiver.received) == 1  # the second message was never attempted
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.FAILED}
    mails = [m for m in smtp_server.messages if "Webhook endpoint disabled" in m["Subject"]]
    assert len(mails) == 1 and mails[0]["To"] == "owner@example.com"


def test_five_days_of_failures_disable_the_endpoint(receiver: Receiver, redis_conn: Any) -> None:
    tenant = TenantFactory.create()
    hook, _ = endpoint(tenant, receiver.url, "order.placed")
    receiver.answer = 500
    # The endpoint has been failing for five days (the run started then).
    WebhookEndpoint.objects.filter(pk=hook.pk).update(failing_since=timezone.now() - timedelta(days=5))
    place_order(tenant)
    settle()
    hook.refresh_from_db()
    assert not hook.enabled and hook.disabled_reason.startswith("every attempt failed since")
    assert hook.owner_notified_at is not None


def test_a_success_ends_the_run_of_failures(receiver: Receiver, redis_conn: Any) -> None:
    tenant = TenantFactory.create()
    hook, _ = endpoint(tenant, receiver.url, "order.placed")
    WebhookEndpoint.objects.filter(pk=hook.pk).update(failing_since=timezone.now() - timedelta(days=4))
    place_order(tenant)
    settle()
    hook.refresh_from_db()
    assert hook.enabled and hook.failing_since is None


def test_a_dead_endpoint_does_not_hold_the_others_up(
    outbound: None, workers: list[Any], redis_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One endpoint never answers; the healthy endpoint's ten deliveries all
    land while the dead one's first attempt is still waiting out its 10 s
    read timeout, on two workers."""
    monkeypatch.setenv("OUTBOUND_WEBHOOK_READ_TIMEOUT", "10")
    dead, healthy = Receiver(answer="hang"), Receiver()
    servers = [start(dead), start(healthy)]
    try:
        tenant = TenantFactory.create()
        dead_hook, _ = endpoint(tenant, dead.url, "order.placed")
        _, secret = endpoint(tenant, healthy.url, "order.placed")
        healthy.secrets = [secret]
        for _ in range(10):
            place_order(tenant)
        workers.extend([start_worker("default"), start_worker("default")])
        outbox_relay_drain()
        deadline = time.monotonic() + 60
        while len(healthy.ok()) < 10:
            assert time.monotonic() < deadline, len(healthy.ok())
            time.sleep(0.05)
        # Not one of the dead endpoint's attempts has come back yet.
        assert not DeliveryAttempt.objects.filter(delivery__endpoint=dead_hook).exists()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
