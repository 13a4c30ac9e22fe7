"""Payment webhooks over real HTTP (pytest-django's live server), signed with
the standardwebhooks library and Stripe's documented scheme, processed by a
real worker."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from asgiref.sync import async_to_sync
from redis import Redis
from standardwebhooks.webhooks import Webhook

from orders.models import Order, Payment
from orders.services import LineRequest, order_cancel, order_place
from outbox.models import OutboxMessage
from outbox.services import outbox_relay_drain
from tests.factories import ProductFactory
from tests.queueing.conftest import run_worker
from webhooks.intake import PROCESS_EVENT, webhook_receive
from webhooks.models import WebhookEvent
from webhooks.providers.stripe import not_from_the_future
from webhooks.transport import InvalidWebhook

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_" + "c2VjcmV0LW9sZC1zZWNyZXQtb2xkLXNlY3JldA=="
STRIPE_SECRET = "whsec_stripe_test_secret"


@pytest.fixture(autouse=True)
def _secrets(settings: Any) -> None:
    settings.PAYMENT_WEBHOOK_SECRET = f"{OLD_SECRET} {SECRET}"
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own live server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _signed(body: bytes, *, secret: str = SECRET, msg_id: str | None = None, skew: int = 0) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = datetime.now(UTC) + timedelta(seconds=skew)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=stamp, data=body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(stamp.timestamp())), "webhook-signature": signature}


def _envelope(order: Order, kind: str = "payment.succeeded", amount: str | None = None, currency: str = "USD") -> bytes:
    data = {"order_id": order.pk, "amount": amount or str(order.total), "currency": currency}
    return json.dumps({"type": kind, "timestamp": datetime.now(UTC).isoformat(), "data": data}).encode()


def _order() -> Order:
    product = ProductFactory.create(stock_quantity=10, price=Decimal("12.50"))
    return order_place(tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, 2)])


def _process() -> None:
    outbox_relay_drain()
    assert run_worker("high", "--burst").returncode == 0


def _nothing_stored() -> bool:
    return not WebhookEvent.objects.exists() and not OutboxMessage.objects.filter(event_type=PROCESS_EVENT).exists()


def test_a_signed_payment_is_stored_then_processed_on_the_high_queue(live_server: Any, redis_conn: Redis) -> None:
    order = _order()
    body = _envelope(order)
    status, answer = _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body))
    assert (status, answer["status"]) == (200, "stored")
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.RECEIVED and event.type == "payment.succeeded"
    _process()
    order.refresh_from_db()
    event.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert event.status == WebhookEvent.Status.PROCESSED and event.last_error == "order paid"
    payment = Payment.objects.get()
    assert (payment.amount, payment.currency, payment.mismatch, payment.needs_refund) == (
        Decimal("25.00"),
        "USD",
        False,
        False,
    )


def test_rotation_accepts_every_configured_secret(live_server: Any, redis_conn: Redis) -> None:
    order = _order()
    body = _envelope(order)
    assert _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body, secret=OLD_SECRET))[0] == 200


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        ("missing headers", lambda body, headers: (body, {})),
        ("garbage signature", lambda body, headers: (body, {**headers, "webhook-signature": "v1,not-base64!!"})),
        ("wrong secret", lambda body, headers: (body, _signed(body, secret="whsec_" + "d3Jvbmctc2VjcmV0"))),
        ("one byte changed", lambda body, headers: (body.replace(b"USD", b"USE"), headers)),
        # A few seconds past the 300 s tolerance: headers carry whole seconds, so a
        # skew of 301 can round back inside it when the clock ticks mid-request.
        ("305 s old", lambda body, headers: (body, _signed(body, skew=-305))),
        ("305 s ahead", lambda body, headers: (body, _signed(body, skew=305))),
        ("v0 only", lambda body, headers: (body, {**headers, "webhook-signature": "v0,abc"})),
    ],
)
def test_bad_signatures_are_400_and_store_nothing(live_server: Any, redis_conn: Redis, case: str, mutate: Any) -> None:
    order = _order()
    body = _envelope(order)
    body, headers = mutate(body, _signed(body))
    status, answer = _post(f"{live_server.url}/api/webhooks/payments/", body, headers)
    assert status == 400, (case, answer)
    assert answer["error"]
    assert _nothing_stored()


def test_malformed_json_and_bad_envelopes_are_400(live_server: Any, redis_conn: Redis) -> None:
    for body in (
        b"{not json",
        b"[1, 2]",
        json.dumps({"type": "payment.succeeded", "data": {"order_id": "x"}}).encode(),
        b'{"type": "payment.disputed", "data": {"amount": NaN}}',  # jsonb would refuse it: a 400, not a 503
    ):
        status, _ = _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body))
        assert status == 400, body
    assert _nothing_stored()


def test_an_oversized_body_is_413(live_server: Any, redis_conn: Redis) -> None:
    body = b'{"type": "payment.succeeded", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, _ = _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body))
    assert status == 413
    assert _nothing_stored()


def test_an_unknown_type_is_recorded_and_ignored(live_server: Any, redis_conn: Redis) -> None:
    body = json.dumps({"type": "payment.disputed", "data": {}}).encode()
    status, answer = _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body))
    assert status == 200 and answer["event"] == "ignored"
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED
    assert not OutboxMessage.objects.filter(event_type=PROCESS_EVENT).exists()


def test_the_same_event_twenty_times_at_once_has_one_effect(live_server: Any, redis_conn: Redis) -> None:
    order = _order()
    body = _envelope(order)
    headers = _signed(body)
    results: list[int] = []
    barrier = threading.Barrier(20)

    def send() -> None:
        barrier.wait()
        results.append(_post(f"{live_server.url}/api/webhooks/payments/", body, headers)[0])

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 20
    assert WebhookEvent.objects.count() == 1
    _process()
    assert Payment.objects.count() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_an_amount_mismatch_is_recorded_and_the_order_stays_unpaid(live_server: Any, redis_conn: Redis) -> None:
    order = _order()
    body = _envelope(order, amount="1.00")
    assert _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body))[0] == 200
    _process()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert Payment.objects.get().mismatch is True


def test_a_payment_for_a_released_order_is_flagged_for_refund(live_server: Any, redis_conn: Redis) -> None:
    order = _order()
    order_cancel(order_id=order.pk, reason="stale")
    body = _envelope(order)
    assert _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body))[0] == 200
    _process()
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert Payment.objects.get().needs_refund is True


def _stripe_headers(body: bytes, secret: str = STRIPE_SECRET, scheme: str = "v1", skew: int = 0) -> dict[str, str]:
    stamp = int(time.time()) + skew
    digest = hmac.new(secret.encode(), f"{stamp}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},{scheme}={digest}"}


def _stripe_event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps(
        {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind, "data": {"object": obj}}
    ).encode()


def test_stripe_payment_intent_succeeded_pays_the_order(live_server: Any, redis_conn: Redis) -> None:
    order = _order()
    body = _stripe_event(
        "payment_intent.succeeded",
        {"id": "pi_123", "amount_received": 2500, "currency": "usd", "metadata": {"order_id": str(order.pk)}},
    )
    status, answer = _post(f"{live_server.url}/api/webhooks/stripe/", body, _stripe_headers(body))
    assert (status, answer["status"]) == (200, "stored")
    _process()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert Payment.objects.get().reference == "pi_123"


def test_stripe_rejects_v0_only_and_tampered_signatures(live_server: Any, redis_conn: Redis) -> None:
    order = _order()
    body = _stripe_event("payment_intent.succeeded", {"id": "pi_1", "amount_received": 2500, "currency": "usd",
                                                      "metadata": {"order_id": str(order.pk)}})  # fmt: skip
    for headers in (
        _stripe_headers(body, scheme="v0"),
        _stripe_headers(body, secret="whsec_wrong"),
        {},
        _stripe_headers(body, skew=-305),  # past the tolerance by more than the whole-second rounding
        _stripe_headers(body, skew=305),  # Stripe's library only checks the past; we check both sides
    ):
        assert _post(f"{live_server.url}/api/webhooks/stripe/", body, headers)[0] == 400, headers
    assert _nothing_stored()


@pytest.mark.parametrize(
    "fragment",
    [
        '"s": "a\\u0000b"',  # jsonb refuses NUL
        '"s": "\\ud800"',  # and lone surrogates
        '"n": 1e400',  # Python reads inf, jsonb refuses it
        '"n": ' + "7" * 5000,  # over Python's 4,300-digit limit: a ValueError
        '"deep": ' + "[" * 5000 + "]" * 5000,  # RecursionError in the parser
        '"type": "' + "t" * 101 + '"',  # longer than the type column
    ],
    ids=["nul", "surrogate", "1e400", "5000-digits", "deep", "long-type"],
)
def test_signed_content_the_database_cannot_store_is_400_not_5xx(
    live_server: Any, redis_conn: Redis, fragment: str
) -> None:
    """The same bytes would fail on every retry: a 400 (sender's error), never a 500 or a 503."""
    body = ('{"id": "evt_hostile", "type": "chaos.hostile", ' + fragment + "}").encode()
    for path, headers in (("payments", _signed(body)), ("stripe", _stripe_headers(body))):
        status, answer = _post(f"{live_server.url}/api/webhooks/{path}/", body, headers)
        assert status == 400 and answer["error"], (path, status, answer)
    assert _nothing_stored()


def test_an_event_id_longer_than_the_column_is_400(live_server: Any, redis_conn: Redis) -> None:
    body = json.dumps({"type": "payment.disputed", "data": {}}).encode()
    status, answer = _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body, msg_id="m" * 256))
    assert status == 400 and "event id" in answer["error"]
    body = json.dumps({"id": "evt_" + "x" * 300, "type": "customer.created", "data": {"object": {}}}).encode()
    assert _post(f"{live_server.url}/api/webhooks/stripe/", body, _stripe_headers(body))[0] == 400
    assert _nothing_stored()


def _stripe_payment(order: Order) -> dict[str, dict[str, Any]]:
    meta = {"order_id": str(order.pk)}
    return {
        "payment_intent.succeeded": {"id": "pi_9", "amount_received": 2500, "currency": "usd", "metadata": meta},
        "checkout.session.completed": {"id": "cs_9", "amount_total": 2500, "currency": "usd",
                                       "payment_intent": "pi_9", "metadata": meta},
        "charge.refunded": {"id": "ch_9", "amount_refunded": 2500, "currency": "usd", "payment_intent": "pi_9",
                            "metadata": meta},
    }  # fmt: skip


@pytest.mark.parametrize(
    "kinds",
    [
        ("payment_intent.succeeded", "checkout.session.completed", "charge.refunded"),
        ("charge.refunded", "checkout.session.completed", "payment_intent.succeeded"),
        ("payment_intent.succeeded", "charge.refunded", "checkout.session.completed"),
    ],
    ids=["in-order", "refund-first", "refund-between"],
)
def test_a_stripe_checkout_paid_then_refunded_ends_the_same_in_any_order(
    live_server: Any, redis_conn: Redis, kinds: tuple[str, ...]
) -> None:
    """One payment, reported twice (PaymentIntent and Checkout Session), then
    refunded: one succeeded payment, one order.paid, REFUNDED, nothing flagged."""
    order = _order()
    objects = _stripe_payment(order)
    for kind in kinds:
        body = _stripe_event(kind, objects[kind])
        assert _post(f"{live_server.url}/api/webhooks/stripe/", body, _stripe_headers(body))[0] == 200
        _process()
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and order.paid_at is not None
    assert sorted(Payment.objects.values_list("kind", "reference", "needs_refund")) == [
        ("refunded", "ch_9", False),
        ("succeeded", "pi_9", False),
    ]
    assert OutboxMessage.objects.filter(event_type="order.paid").count() == 1


def test_stripe_subscription_events_update_the_tenant(live_server: Any, redis_conn: Redis) -> None:
    order = _order()
    tenant = order.tenant
    tenant.stripe_customer_id = "cus_42"
    tenant.save(update_fields=["stripe_customer_id"])
    for kind, expected in (("invoice.payment_failed", "past_due"), ("customer.subscription.deleted", "canceled")):
        body = _stripe_event(kind, {"id": f"in_{kind}", "customer": "cus_42"})
        assert _post(f"{live_server.url}/api/webhooks/stripe/", body, _stripe_headers(body))[0] == 200
        _process()
        tenant.refresh_from_db()
        assert tenant.subscription_status == expected


def test_database_errors_answer_503_so_the_provider_retries(
    live_server: Any, redis_conn: Redis, monkeypatch: Any
) -> None:
    """Unit-level: the store step raises what psycopg raises when PostgreSQL is down.
    (A real outage belongs to the chaos suite.)"""
    from django.db import OperationalError

    import webhooks.views

    def down(**_: Any) -> None:
        raise OperationalError("connection to server on socket failed: No such file or directory")

    monkeypatch.setattr(webhooks.views, "webhook_receive", down)
    order = _order()
    body = _envelope(order)
    status, answer = _post(f"{live_server.url}/api/webhooks/payments/", body, _signed(body))
    assert status == 503 and "retry later" in answer["error"]
    assert _nothing_stored()


def test_intake_survives_a_dropped_database_connection(redis_conn: Redis) -> None:
    """Intake skips Django's per-request health check; a connection PostgreSQL
    dropped since the last request (a restart) is replaced, not answered 503.
    (The live server closes its connections after every request, so this
    drives the service on this thread's kept connection.)"""
    from django.db import connection

    order = _order()
    connection.ensure_connection()
    doomed = connection.connection.info.backend_pid
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [doomed])  # what a PostgreSQL restart does
    received = webhook_receive(
        provider="standard", event_id="msg_after_restart", event_type="payment.failed",
        payload=json.loads(_envelope(order, kind="payment.failed")),
    )  # fmt: skip
    assert received.created and connection.connection.info.backend_pid != doomed
    assert WebhookEvent.objects.filter(event_id="msg_after_restart").count() == 1
    assert OutboxMessage.objects.filter(event_type=PROCESS_EVENT).count() == 1


@pytest.mark.parametrize(
    ("where", "value"),
    [("id", "evt_\\ud800"), ("type", "payment_intent.\\udc00"), ("id", "evt_\\u0000"), ("type", "charge.\\u0000")],
    ids=["surrogate-id", "surrogate-type", "nul-id", "nul-type"],
)
def test_an_event_id_or_type_postgresql_cannot_store_is_400(
    live_server: Any, redis_conn: Redis, where: str, value: str
) -> None:
    """psycopg refuses a lone surrogate with UnicodeEncodeError (not a DataError)
    before PostgreSQL sees it: checked up front, a 400 that says what was wrong."""
    event = {"id": "evt_ok", "type": "customer.created", "data": {"object": {}}}
    body = json.dumps(event).replace(f'"{event[where]}"', f'"{value}"').encode()
    status, answer = _post(f"{live_server.url}/api/webhooks/stripe/", body, _stripe_headers(body))
    assert status == 400 and f"event {where}" in answer["error"], answer
    std = ('{"type": "' + value + '", "data": {}}').encode() if where == "type" else None
    if std is not None:  # the Standard Webhooks id is a header: never a surrogate
        status, answer = _post(f"{live_server.url}/api/webhooks/payments/", std, _signed(std))
        assert status == 400 and "event type" in answer["error"], answer
    assert _nothing_stored()


# --------------------------------------------------------------------------- ASGI (ASGI_APPLICATION)


def _asgi_post(path: str, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """One chunked request (no Content-Length) through config.asgi's application,
    as an ASGI server (uvicorn, daphne) delivers it: several http.request messages."""
    from config.asgi import application

    sent_headers = {"host": "testserver", "content-type": "application/json", "transfer-encoding": "chunked", **headers}
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in sent_headers.items()],
    }  # fmt: skip
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.Future()  # the client stays connected; Django cancels this when it has answered
        raise AssertionError("unreachable")

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(dict(message))

    async def run() -> None:
        await asyncio.wait_for(application(scope, receive, send), timeout=30)

    # As Django's AsyncClient does: the view's sync code runs on this thread, with its connection.
    async_to_sync(run)()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(raw) if raw.startswith(b"{") else {"raw": raw[:200]}


def test_a_chunked_body_under_asgi_is_read_and_stored(redis_conn: Redis) -> None:
    """Under ASGI there is no ``wsgi.input``: the server has already de-chunked the body."""
    order = _order()
    body = _envelope(order)
    status, answer = _asgi_post("/api/webhooks/payments/", [body[:20], body[20:]], _signed(body))
    assert (status, answer.get("status")) == (200, "stored"), answer
    assert WebhookEvent.objects.get().payload == json.loads(body)


def test_a_chunked_body_over_1_mb_under_asgi_is_413(redis_conn: Redis) -> None:
    body = b'{"type": "payment.succeeded", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    status, _ = _asgi_post("/api/webhooks/payments/", chunks, _signed(body))
    assert status == 413
    assert _nothing_stored()


# --------------------------------------------------------------------------- Stripe-Signature timestamp


@pytest.mark.parametrize(
    "header",
    ["v1=abc", "t,v1=abc", "t=,v1=abc", "t=soon,v1=abc", "t=1,t", f"t=1,t={int(time.time()) + 3600}"],
    ids=["no-t", "bare-t", "empty-t", "not-a-number", "bare-second-t", "only-the-first-t-counts"],
)
def test_an_unparsable_or_later_timestamp_is_left_to_stripes_verification(header: str) -> None:
    """Stripe 16.1 reads the first ``t=``; a header it cannot parse is its to reject, not an exception of ours."""
    not_from_the_future(header)


def test_a_first_timestamp_more_than_300_s_ahead_is_refused() -> None:
    with pytest.raises(InvalidWebhook, match="ahead"):
        not_from_the_future(f"t={int(time.time()) + 301},t=1,v1=abc")
