"""Hostile and out-of-order webhook input, against a real gunicorn.

Both endpoints — ``/api/webhooks/payments/`` (Standard Webhooks) and
``/api/webhooks/stripe/`` (``Stripe-Signature``) — get missing and garbage
signature headers, a v0-only signature, a body changed by one byte after
signing, timestamps just outside the 300 s tolerance, signed bodies that are
not JSON or that PostgreSQL cannot store, a 2 MB body and unknown event types;
then the same event 20 times at once, and every ordering of the related events
of one order. The end state is counted: a rejected request stores nothing
(webhook events, outbox messages, payments, order changes before and after),
a duplicate has no second effect, and an order's final state does not depend
on the order its events arrived in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from chaos.cluster import Cluster, Web, wait_for
from orders.models import Order, Payment
from orders.services import LineRequest, order_place
from outbox.models import OutboxMessage
from tests.factories import ProductFactory
from webhooks.intake import PROCESS_EVENT
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

PAYMENTS = "/api/webhooks/payments/"
STRIPE = "/api/webhooks/stripe/"
TIMEOUT = 15.0  # per request: a hung worker fails the case, not the whole run
PROCESS = PROCESS_EVENT
TWO_MB = 2 * 1024 * 1024
NOT_THE_SECRET = "whsec_" + base64.b64encode(b"not the secret").decode()

Headers = dict[str, str]
Record = Callable[..., Any]


# --------------------------------------------------------------------------- signing


def _std_headers(body: bytes, *, msg_id: str | None = None, skew: int = 0) -> Headers:
    """Standard Webhooks headers, signed with the standardwebhooks library."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = datetime.now(UTC) + timedelta(seconds=skew)
    secret = settings.PAYMENT_WEBHOOK_SECRET.split()[0]
    try:
        signature = Webhook(secret).sign(msg_id=msg_id, timestamp=stamp, data=body.decode())
    except UnicodeDecodeError:  # the library signs text; a sender signing raw bytes does this
        key = base64.b64decode(secret.removeprefix("whsec_"))
        mac = hmac.new(key, f"{msg_id}.{int(stamp.timestamp())}.".encode() + body, hashlib.sha256).digest()
        signature = "v1," + base64.b64encode(mac).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(stamp.timestamp())), "webhook-signature": signature}


def _stripe_mac(body: bytes, stamp: int, secret: str | None = None) -> str:
    key = (secret or settings.STRIPE_WEBHOOK_SECRET).encode()
    return hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


def _stripe_headers(body: bytes, *, skew: int = 0, scheme: str = "v1", secret: str | None = None) -> Headers:
    """Stripe's documented scheme: ``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``."""
    stamp = int(time.time()) + skew
    return {"Stripe-Signature": f"t={stamp},{scheme}={_stripe_mac(body, stamp, secret)}"}


# --------------------------------------------------------------------------- events


def _order() -> Order:
    product = ProductFactory.create(stock_quantity=10, price=Decimal("12.50"))
    return order_place(tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, 2)])


def _orders(n: int) -> list[Order]:
    product = ProductFactory.create(stock_quantity=2 * n, price=Decimal("12.50"))
    return [
        order_place(tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, 2)])
        for _ in range(n)
    ]


def _std_body(order: Order, kind: str = "payment.succeeded", **extra: Any) -> bytes:
    data = {"order_id": order.pk, "amount": str(order.total), "currency": order.currency}
    return json.dumps({"type": kind, "timestamp": datetime.now(UTC).isoformat(), "data": data, **extra}).encode()


def _stripe_body(kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    event = {"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
             "created": int(time.time()), "data": {"object": obj}}  # fmt: skip
    return json.dumps(event).encode()


def _cents(order: Order) -> int:
    return int(order.total * 100)


def _stripe_objects(order: Order) -> dict[str, dict[str, Any]]:
    """One Stripe Checkout payment as Stripe reports it: a failed first try,
    the PaymentIntent succeeding, the Checkout Session completing (the same
    money again, named by its PaymentIntent), and a full refund of the charge."""
    pi, meta, cents = f"pi_{uuid.uuid4().hex[:16]}", {"order_id": str(order.pk)}, _cents(order)
    currency = order.currency.lower()
    return {
        "payment_intent.payment_failed": {"id": pi, "object": "payment_intent", "amount": cents,
                                          "currency": currency, "status": "requires_payment_method",
                                          "metadata": meta},
        "payment_intent.succeeded": {"id": pi, "object": "payment_intent", "amount": cents,
                                     "amount_received": cents, "currency": currency, "status": "succeeded",
                                     "metadata": meta},
        "checkout.session.completed": {"id": f"cs_{uuid.uuid4().hex[:16]}", "object": "checkout.session",
                                       "amount_total": cents, "currency": currency, "payment_intent": pi,
                                       "payment_status": "paid", "metadata": meta},
        "charge.refunded": {"id": f"ch_{uuid.uuid4().hex[:16]}", "object": "charge", "amount": cents,
                            "amount_refunded": cents, "refunded": True, "currency": currency,
                            "payment_intent": pi, "metadata": meta},
    }  # fmt: skip


# --------------------------------------------------------------------------- sending and counting


def _post(web: Web, path: str, body: bytes, headers: Headers) -> tuple[int, dict[str, Any]]:
    """One real HTTP request (bounded by TIMEOUT); -1 when the server hung up before answering."""
    try:
        status, raw = web.request("POST", path, body, {"Content-Type": "application/json", **headers}, TIMEOUT)
    except (ConnectionResetError, BrokenPipeError):
        return -1, {}
    return status, _answer(raw)


def _answer(raw: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(raw)
    except ValueError:
        return {"raw": raw[:200].decode(errors="replace")}
    return answer if isinstance(answer, dict) else {"raw": answer}


def _post_chunked(web: Web, path: str, body: bytes, headers: Headers) -> tuple[int, dict[str, Any]]:
    """The same body sent with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=TIMEOUT)
    chunks: Iterator[bytes] = (body[i : i + 65536] for i in range(0, len(body), 65536))
    try:
        conn.request("POST", path, body=chunks, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, _answer(response.read())
    except (ConnectionResetError, BrokenPipeError):
        return -1, {}
    finally:
        conn.close()


class Counts(NamedTuple):
    events: int
    messages: int
    payments: int
    orders_moved: int  # orders no longer PENDING

    def minus(self, other: Counts) -> Counts:
        return Counts(*(a - b for a, b in zip(self, other, strict=True)))


def _counts() -> Counts:
    return Counts(
        WebhookEvent.objects.count(),
        OutboxMessage.objects.count(),
        Payment.objects.count(),
        Order.objects.exclude(status=Order.Status.PENDING).count(),
    )


# --------------------------------------------------------------------------- rejected input


@dataclass
class Case:
    label: str
    path: str
    body: bytes
    headers: Headers
    expect: int = 400
    stores: int = 0  # webhook events this request should store (controls, unknown types)
    chunked: bool = False


@dataclass
class Family:
    scenario: str
    fault: str
    cases: Callable[[], list[Case]]  # built just before sending: timestamps stay fresh


def _drop(headers: Headers, name: str) -> Headers:
    return {k: v for k, v in headers.items() if k != name}


def _missing(order: Order) -> list[Case]:
    std = _std_body(order)
    signed = _std_headers(std)
    cases = [Case("payments: no headers", PAYMENTS, std, {})]
    cases += [Case(f"payments: no {name}", PAYMENTS, std, _drop(signed, name)) for name in signed]
    stripe = _stripe_body("payment_intent.succeeded", _stripe_objects(order)["payment_intent.succeeded"])
    cases += [
        Case("stripe: no Stripe-Signature", STRIPE, stripe, {}),
        Case("stripe: empty Stripe-Signature", STRIPE, stripe, {"Stripe-Signature": ""}),
    ]
    return cases


def _garbage(order: Order) -> list[Case]:
    std = _std_body(order)
    signed = _std_headers(std)
    bad_signatures = ["garbage", "v1,not-base64!!", "v1,", "v1,a,b", "v1," + "A" * 44, "v1,xx " * 1300,
                      "v1,\xff\xfe\xfd", "v1 " + signed["webhook-signature"]]  # fmt: skip
    bad_stamps = ["abc", "nan", "inf", "-inf", "1e30", "-1", "0x10", "\xff"]
    cases = [Case(f"payments: signature {s[:16]!r}", PAYMENTS, std, {**signed, "webhook-signature": s})
             for s in bad_signatures]  # fmt: skip
    cases += [Case(f"payments: timestamp {s!r}", PAYMENTS, std, {**signed, "webhook-timestamp": s})
              for s in bad_stamps]  # fmt: skip
    cases.append(Case("payments: other webhook-id", PAYMENTS, std, {**signed, "webhook-id": "msg_other"}))
    cases.append(Case("payments: wrong secret", PAYMENTS, std, _wrong_secret(std)))
    stripe = _stripe_body("payment_intent.succeeded", _stripe_objects(order)["payment_intent.succeeded"])
    now, mac = int(time.time()), _stripe_mac(stripe, int(time.time()))
    for header in ["garbage", "t=abc,v1=00", "t=,v1=", f"v1={mac}", f"t={now}", f"t={now},v1=zz",
                   f"t={now},v1", f"t={now},v1=" + "a" * 7000, f"t=\xff,v1={mac}", f"t={now}.5,v1={mac}",
                   _stripe_headers(stripe, secret=NOT_THE_SECRET)["Stripe-Signature"]]:  # fmt: skip
        cases.append(Case(f"stripe: {header[:24]!r}", STRIPE, stripe, {"Stripe-Signature": header}))
    return cases


def _wrong_secret(body: bytes) -> Headers:
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    signature = Webhook(NOT_THE_SECRET).sign(msg_id, stamp, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(stamp.timestamp())), "webhook-signature": signature}


def _v0_only(order: Order) -> list[Case]:
    stripe = _stripe_body("payment_intent.succeeded", _stripe_objects(order)["payment_intent.succeeded"])
    now = int(time.time())
    mac = _stripe_mac(stripe, now)
    std = _std_body(order)
    signed = _std_headers(std)
    good = signed["webhook-signature"].split(",", 1)[1]
    return [
        Case("stripe: v0 only", STRIPE, stripe, _stripe_headers(stripe, scheme="v0")),
        Case("stripe: v0 right, v1 garbage", STRIPE, stripe, {"Stripe-Signature": f"t={now},v0={mac},v1=00ff"}),
        Case("stripe: V1 upper case", STRIPE, stripe, {"Stripe-Signature": f"t={now},V1={mac}"}),
        Case("payments: v0 only", PAYMENTS, std, {**signed, "webhook-signature": f"v0,{good}"}),
        Case("payments: v1a only", PAYMENTS, std, {**signed, "webhook-signature": f"v1a,{good}"}),
    ]


def _one_byte(body: bytes, at: int) -> bytes:
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


def _tampered(order: Order) -> list[Case]:
    cases = []
    stripe = _stripe_body("payment_intent.succeeded", _stripe_objects(order)["payment_intent.succeeded"])
    for path, body in ((PAYMENTS, _std_body(order)), (STRIPE, stripe)):
        signed = _std_headers(body) if path == PAYMENTS else _stripe_headers(body)
        variants = {
            "first byte flipped": _one_byte(body, 0),
            "middle byte flipped": _one_byte(body, len(body) // 2),
            "last byte flipped": _one_byte(body, len(body) - 1),
            "amount digit changed": body.replace(b"25", b"26", 1),
            "one byte appended": body + b" ",
            "last byte dropped": body[:-1],
        }
        cases += [Case(f"{path}: {name}", path, changed, signed) for name, changed in variants.items()]
    return cases


def _skewed(order: Order) -> list[Case]:
    cases = []
    for skew in (-301, 301):
        std = _std_body(order)
        stripe = _stripe_body("payment_intent.succeeded", _stripe_objects(order)["payment_intent.succeeded"])
        cases.append(Case(f"payments: {skew:+} s", PAYMENTS, std, _std_headers(std, skew=skew)))
        cases.append(Case(f"stripe: {skew:+} s", STRIPE, stripe, _stripe_headers(stripe, skew=skew)))
    # Controls (unknown types, stored and ignored): inside the window is accepted,
    # so the rejections above are about the clock and not about our signing.
    for skew in (-290, 290):
        std = json.dumps({"type": "chaos.clock_control", "data": {}}).encode()
        stripe = _stripe_body("chaos.clock_control", {})
        cases.append(Case(f"payments: {skew:+} s", PAYMENTS, std, _std_headers(std, skew=skew), 200, 1))
        cases.append(Case(f"stripe: {skew:+} s", STRIPE, stripe, _stripe_headers(stripe, skew=skew), 200, 1))
    return cases


def _signed_both(label: str, std: bytes, stripe: bytes | None = None) -> list[Case]:
    stripe = std if stripe is None else stripe
    return [
        Case(f"payments: {label}", PAYMENTS, std, _std_headers(std)),
        Case(f"stripe: {label}", STRIPE, stripe, _stripe_headers(stripe)),
    ]


def _malformed(order: Order) -> list[Case]:
    valid = _std_body(order)
    cases: list[Case] = []
    for label, body in [
        ("empty body", b""),
        ("not JSON", b"{not json"),
        ("truncated", valid[:-1]),
        ("a list", b"[1, 2]"),
        ("null", b"null"),
        ("a string", b'"payment.succeeded"'),
        ("type not a string", b'{"id": "evt_1", "type": 1}'),
        ("NaN", b'{"id": "evt_nan", "type": "payment.succeeded", "amount": NaN}'),
        ("invalid UTF-8", b'{"id": "evt_utf", "type": "payment.\xff\xfe"}'),
        ("trailing garbage", valid + b"}"),
        ("UTF-16", valid.decode().encode("utf-16")),
    ]:
        cases += _signed_both(label, body)
    bad_envelope = json.dumps({"type": "payment.succeeded", "data": {"order_id": "x", "amount": "1"}}).encode()
    cases.append(Case("payments: known type, bad envelope", PAYMENTS, bad_envelope, _std_headers(bad_envelope)))
    no_id = json.dumps({"object": "event", "type": "payment_intent.succeeded", "data": {"object": {}}}).encode()
    cases.append(Case("stripe: no event id", STRIPE, no_id, _stripe_headers(no_id)))
    return cases


def _unstorable(order: Order) -> list[Case]:
    """Valid JSON, correctly signed, that PostgreSQL (or Python's parser) cannot
    take: each must be a 400 (the sender's retry cannot help), never a 500/503."""
    cases: list[Case] = []
    for label, fragment in [
        ("NUL in a string", '"s": "a\\u0000b"'),
        ("lone surrogate", '"s": "\\ud800"'),
        ("1e400", '"n": 1e400'),
        ("5,000-digit integer", '"n": ' + "7" * 5000),
        ("type of 200 chars", '"type2": 0, "type": "' + "t" * 200 + '"'),
    ]:
        body = ('{"id": "evt_' + uuid.uuid4().hex + '", "type": "chaos.hostile", ' + fragment + "}").encode()
        cases += _signed_both(label, body)
    deep = b"[" * 200_000 + b"]" * 200_000
    cases += _signed_both("200,000-deep nesting", deep)
    deep_obj = ('{"id": "evt_deep", "type": "chaos.hostile", "x": ' + "[" * 5000 + "]" * 5000 + "}").encode()
    cases += _signed_both("5,000-deep list inside the event", deep_obj)
    std = json.dumps({"type": "chaos.hostile", "data": {}}).encode()
    long_id = "msg_" + "x" * 300
    cases.append(Case("payments: webhook-id of 304 chars", PAYMENTS, std, _std_headers(std, msg_id=long_id)))
    stripe = _stripe_body("chaos.hostile", {}, event_id="evt_" + "x" * 300)
    cases.append(Case("stripe: event id of 304 chars", STRIPE, stripe, _stripe_headers(stripe)))
    return cases


def _oversized(order: Order) -> list[Case]:
    pad = "x" * TWO_MB
    std = json.dumps({"type": "payment.succeeded", "data": {"order_id": order.pk}, "pad": pad}).encode()
    stripe = _stripe_body("payment_intent.succeeded", {"pad": pad})
    control = json.dumps({"type": "chaos.chunked_control", "data": {}}).encode()
    just_over = _stripe_body("payment_intent.succeeded", {"pad": "x" * (1024 * 1024 - 100)})
    return [
        Case("payments: 2 MB", PAYMENTS, std, _std_headers(std), 413),
        Case("stripe: 2 MB", STRIPE, stripe, _stripe_headers(stripe), 413),
        Case("stripe: 1 MB + a few bytes", STRIPE, just_over, _stripe_headers(just_over), 413),
        Case("payments: 2 MB chunked", PAYMENTS, std, _std_headers(std), 413, chunked=True),
        Case("stripe: 2 MB chunked", STRIPE, stripe, _stripe_headers(stripe), 413, chunked=True),
        # Control: a small chunked event (unknown type) is read and stored, not seen as empty.
        Case("payments: small chunked", PAYMENTS, control, _std_headers(control), 200, 1, chunked=True),
    ]


def _unknown_types(order: Order) -> list[Case]:
    cases = []
    for kind in ("payment.disputed", "chaos.unknown", "PAYMENT.SUCCEEDED"):
        body = json.dumps({"type": kind, "data": {"order_id": order.pk, "amount": "25.00", "currency": "USD"}})
        cases.append(Case(f"payments: {kind}", PAYMENTS, body.encode(), _std_headers(body.encode()), 200, 1))
    for kind in ("customer.created", "payment_intent.created", "charge.succeeded"):
        stripe = _stripe_body(kind, _stripe_objects(order)["payment_intent.succeeded"])
        cases.append(Case(f"stripe: {kind}", STRIPE, stripe, _stripe_headers(stripe), 200, 1))
    return cases


def _families(order: Order) -> list[Family]:
    return [
        Family("webhook: missing signature headers", "no/empty headers", lambda: _missing(order)),
        Family("webhook: garbage signature headers", "garbage headers", lambda: _garbage(order)),
        Family("webhook: v0-only signature", "unsupported scheme", lambda: _v0_only(order)),
        Family("webhook: body changed by one byte", "tampered body", lambda: _tampered(order)),
        Family("webhook: timestamp 301 s old / ahead", "replay / clock skew", lambda: _skewed(order)),
        Family("webhook: malformed JSON, signed", "malformed body", lambda: _malformed(order)),
        Family(
            "webhook: signed but unstorable JSON",
            "NUL, surrogate, 1e400, deep nesting, long ids",
            lambda: _unstorable(order),
        ),
        Family("webhook: 2 MB body", "oversized body", lambda: _oversized(order)),
        Family("webhook: unknown event type", "unknown type (stored, ignored)", lambda: _unknown_types(order)),
    ]


def _tail(web: Web) -> str:
    """The end of gunicorn's log (tracebacks of any 500), if it is still there."""
    try:
        return web.proc.output()[-4000:]
    except OSError as exc:  # another run of the suite cleared the log directory
        return f"(gunicorn log unavailable: {exc})"


def _send_case(web: Web, case: Case) -> tuple[int, dict[str, Any]]:
    if case.chunked:
        return _post_chunked(web, case.path, case.body, case.headers)
    return _post(web, case.path, case.body, case.headers)


def _run_family(web: Web, family: Family, record: Record) -> list[str]:
    """Send every case of one family; one table row; the problems found."""
    cases = family.cases()
    before = _counts()
    problems = []
    for case in cases:
        status, answer = _send_case(web, case)
        if status != case.expect:
            problems.append(f"{case.label}: {status} (expected {case.expect}) {answer}")
        elif case.expect == 200 and answer.get("event") != WebhookEvent.Status.IGNORED:
            problems.append(f"{case.label}: answered {answer}, expected an ignored event")
    delta = _counts().minus(before)
    expected = Counts(sum(c.stores for c in cases), 0, 0, 0)
    # Rows stored that should not be (or, for unknown types, events not stored).
    wrong = sum(abs(d - e) for d, e in zip(delta, expected, strict=True))
    if wrong:
        problems.append(f"stored {delta}, expected {expected}")
    per_path = {p: sum(c.path == p for c in cases) for p in (PAYMENTS, STRIPE)}
    accepted = sum(c.expect == 200 for c in cases)
    load = f"{len(cases)} requests ({per_path[PAYMENTS]} payments, {per_path[STRIPE]} stripe)"
    load += f", {accepted} to be accepted" if accepted else ""
    record(family.scenario, load=load, fault=family.fault, lost=wrong, duplicated=0, passed=not problems)
    return [f"{family.scenario}: {p}" for p in problems]


@pytest.mark.fast
def test_rejected_input_is_answered_as_documented_and_stores_nothing(cluster: Cluster, record: Record) -> None:
    web = cluster.web()
    order = _order()
    problems: list[str] = []
    for family in _families(order):
        problems += _run_family(web, family, record)
    assert web.proc.alive(), _tail(web)
    assert not problems, "\n".join(problems) + "\n" + _tail(web)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert not WebhookEvent.objects.exclude(status=WebhookEvent.Status.IGNORED).exists()


# --------------------------------------------------------------------------- duplicates


def _burst(web: Web, path: str, body: bytes, headers: Headers, n: int = 20) -> list[tuple[int, str]]:
    """``n`` threads, each one real HTTP request, released together."""
    barrier = threading.Barrier(n, timeout=TIMEOUT)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send() -> None:
        try:
            barrier.wait()
            status, answer = _post(web, path, body, headers)
        except (OSError, threading.BrokenBarrierError) as exc:
            status, answer = -1, {"status": repr(exc)}
        with lock:
            results.append((status, str(answer.get("status"))))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT * 2)
    return results


def _settled(event_ids: list[str]) -> bool:
    """Every one of these events has been processed (or has failed)."""
    done = WebhookEvent.objects.filter(event_id__in=event_ids).exclude(status=WebhookEvent.Status.RECEIVED)
    return done.count() == len(event_ids)


def _effects(order: Order) -> tuple[str, int, int]:
    """(status, succeeded payments, order.paid messages) of one order."""
    status = Order.objects.values_list("status", flat=True).get(pk=order.pk)
    payments = Payment.objects.filter(order=order, kind=Payment.Kind.SUCCEEDED).count()
    paid = OutboxMessage.objects.filter(event_type="order.paid", aggregate_id=str(order.pk)).count()
    return status, payments, paid


@pytest.mark.fast
def test_the_same_event_twenty_times_at_once_has_one_effect(cluster: Cluster, record: Record) -> None:
    cluster.relay()  # started first: they load Django while gunicorn does
    cluster.worker("high")
    web = cluster.web()
    std_order, stripe_order = _orders(2)
    std = _std_body(std_order)
    std_headers = _std_headers(std)
    stripe_id = f"evt_{uuid.uuid4().hex}"
    stripe = _stripe_body("payment_intent.succeeded", _stripe_objects(stripe_order)["payment_intent.succeeded"],
                          event_id=stripe_id)  # fmt: skip
    stripe_headers = _stripe_headers(stripe)
    answers = _burst(web, PAYMENTS, std, std_headers) + _burst(web, STRIPE, stripe, stripe_headers)
    ids = [std_headers["webhook-id"], stripe_id]
    wait_for(lambda: _settled(ids), timeout=60)
    # The provider retrying once more, after processing: a duplicate, no second effect.
    answers += [(s, str(a.get("status"))) for s, a in (_post(web, PAYMENTS, std, std_headers),
                                                       _post(web, STRIPE, stripe, stripe_headers))]  # fmt: skip
    time.sleep(1)  # a wrongly published second message would be processed by now
    stored = WebhookEvent.objects.filter(event_id__in=ids).count()
    messages = OutboxMessage.objects.filter(event_type=PROCESS).count()
    effects = [_effects(std_order), _effects(stripe_order)]
    lost = (2 - stored) + sum(status != Order.Status.PAID for status, _, _ in effects)
    twice = (stored - 2) + (messages - 2) + sum(p - 1 + m - 1 for _, p, m in effects)
    statuses = sorted({s for s, _ in answers})
    record("webhook: same event 20× at once", load="2 × 20 concurrent requests + 1 redelivery each",
           fault="duplicate delivery", lost=lost, duplicated=twice)  # fmt: skip
    assert statuses == [200], answers
    assert sorted(a for _, a in answers).count("stored") == 2, answers
    assert (lost, twice) == (0, 0), (stored, messages, effects)
    assert not WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).exists()


# --------------------------------------------------------------------------- orderings

STRIPE_KINDS = ("payment_intent.payment_failed", "payment_intent.succeeded", "checkout.session.completed",
                "charge.refunded")  # fmt: skip
STD_KINDS = ("payment.failed", "payment.succeeded", "payment.refunded")


@dataclass
class Plan:
    """One order and the order its events will arrive in."""

    order: Order
    path: str
    kinds: tuple[str, ...]
    bodies: dict[str, tuple[bytes, str]]  # kind → (body, event id)


def _stripe_plan(order: Order, kinds: tuple[str, ...]) -> Plan:
    objects = _stripe_objects(order)
    bodies = {}
    for kind in kinds:
        event_id = f"evt_{uuid.uuid4().hex}"
        bodies[kind] = (_stripe_body(kind, objects[kind], event_id=event_id), event_id)
    return Plan(order, STRIPE, kinds, bodies)


def _std_plan(order: Order, kinds: tuple[str, ...]) -> Plan:
    return Plan(order, PAYMENTS, kinds, {kind: (_std_body(order, kind), f"msg_{uuid.uuid4().hex}") for kind in kinds})


def _deliver_step(web: Web, plans: list[Plan], step: int) -> tuple[list[str], list[str]]:
    """Send the ``step``-th event of every plan; (event ids sent, problems)."""
    ids, problems = [], []
    for plan in plans:
        if step >= len(plan.kinds):
            continue
        body, event_id = plan.bodies[plan.kinds[step]]
        headers = _std_headers(body, msg_id=event_id) if plan.path == PAYMENTS else _stripe_headers(body)
        status, answer = _post(web, plan.path, body, headers)
        if status != 200:
            problems.append(f"{plan.kinds}: step {step} answered {status} {answer}")
        ids.append(event_id)
    return ids, problems


def _final_state(order: Order) -> tuple[Any, ...]:
    order.refresh_from_db()
    payments = sorted(
        Payment.objects.filter(order=order).values_list("kind", "amount", "currency", "mismatch", "needs_refund")
    )
    paid = OutboxMessage.objects.filter(event_type="order.paid", aggregate_id=str(order.pk)).count()
    return order.status, order.paid_at is not None, order.total, tuple(payments), paid


def _expected(order: Order) -> tuple[Any, ...]:
    total, currency = order.total, order.currency
    payments = tuple(sorted((kind, total, currency, False, False) for kind in ("failed", "succeeded", "refunded")))
    return Order.Status.REFUNDED, True, total, payments, 1


def _tally(plans: list[Plan]) -> tuple[int, int, list[str]]:
    """(orderings that lost an effect, orderings with a double effect, the differing ones)."""
    lost = twice = 0
    differing = []
    for plan in plans:
        state, expected = _final_state(plan.order), _expected(plan.order)
        if state == expected:
            continue
        differing.append(f"{' → '.join(plan.kinds)}: {state}")
        status, paid, _, payments, paid_messages = state
        lost += status != Order.Status.REFUNDED or not paid or len(payments) < len(expected[3])
        kinds = [p[0] for p in payments]
        twice += kinds.count("succeeded") > 1 or paid_messages > 1 or any(p[4] for p in payments)
    return lost, twice, differing


def test_every_ordering_of_an_orders_events_ends_in_the_same_state(cluster: Cluster, record: Record) -> None:
    """Providers do not promise delivery order. Each permutation of one
    payment's events goes to a fresh order; step k delivers the k-th event of
    every permutation and waits until all are processed, so each order sees
    its events in exactly its permutation's order."""
    cluster.relay()  # started first: they load Django while gunicorn does
    cluster.worker("high")
    web = cluster.web()
    stripe_perms = list(itertools.permutations(STRIPE_KINDS))
    std_perms = list(itertools.permutations(STD_KINDS))
    orders = _orders(len(stripe_perms) + len(std_perms))
    stripe_plans = [_stripe_plan(o, p) for o, p in zip(orders, stripe_perms, strict=False)]
    std_plans = [_std_plan(o, p) for o, p in zip(orders[len(stripe_perms) :], std_perms, strict=True)]
    problems: list[str] = []
    for step in range(len(STRIPE_KINDS)):
        ids, sent_problems = _deliver_step(web, stripe_plans + std_plans, step)
        problems += sent_problems
        wait_for(lambda: _settled(ids), timeout=60)  # noqa: B023 - called within this iteration
    failed = list(WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).values_list("type", "last_error"))
    for scenario, plans in (
        (f"webhook: {len(stripe_perms)} orderings of 4 Stripe events", stripe_plans),
        (f"webhook: {len(std_perms)} orderings of 3 payment events", std_plans),
    ):
        lost, twice, differing = _tally(plans)
        record(scenario, load=f"{len(plans)} orders × {len(plans[0].kinds)} events",
               fault="out-of-order delivery", lost=lost, duplicated=twice)  # fmt: skip
        problems += differing
    assert not failed, failed
    assert not problems, "\n".join(problems)
