"""Payment webhooks: intake (store first, in one transaction with the outbox
message that will process it) and processing (on the ``high`` queue).

docs/orders.md."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

import outbox
from orders.models import Order, Payment, WebhookEvent
from orders.services import order_mark_paid
from outbox.routes import Event
from outbox.services import outbox_insert_and_publish

log = logging.getLogger(__name__)

PROCESS_EVENT = "payment.webhook_received"
REFERENCE_MAX = 255  # Payment.reference and .refunded_reference


class InvalidWebhook(ValueError):
    """Signed, but not something we can act on: a 400, nothing stored."""


@dataclass(frozen=True)
class PaymentFacts:
    """What a provider told us, normalised: decimal major units, upper-case ISO 4217."""

    kind: str  # Payment.Kind
    order_id: int
    amount: Decimal
    currency: str
    reference: str
    # A refund: the reference of the payment it returns, when the provider names it.
    refunded_reference: str = ""


# The release smoke test's event (webhook_smoke_test): processed end to end
# (outbox → relay → `high` worker) like a payment, but it touches no order.
SMOKE_TYPE = "smoke.test"

KNOWN_TYPES = {
    "standard": {"payment.succeeded", "payment.failed", "payment.refunded", SMOKE_TYPE},
    "stripe": {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.refunded",
        "checkout.session.completed",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "customer.subscription.deleted",
    },
}


def _money(value: Any, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidWebhook(f"{field} is not a decimal amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidWebhook(f"{field} must be a non-negative amount, got {value!r}")
    return amount


def _order_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidWebhook(f"order id must be an integer, got {value!r}") from None


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise InvalidWebhook(f"currency must be an ISO 4217 code, got {value!r}")
    return value.upper()


def standard_facts(event_id: str, body: dict[str, Any]) -> PaymentFacts:
    """The Standard Webhooks envelope: {"type", "timestamp", "data": {order_id, amount, currency}}."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidWebhook("envelope has no 'data' object")
    kind = {"payment.succeeded": "succeeded", "payment.failed": "failed", "payment.refunded": "refunded"}[body["type"]]
    return PaymentFacts(
        kind=kind,
        order_id=_order_id(data.get("order_id")),
        amount=_money(data.get("amount"), "data.amount"),
        currency=_currency(data.get("currency")),
        reference=event_id,
    )


class Received(NamedTuple):
    """What intake stored (or found): the hot path builds no model instance."""

    pk: int
    status: str
    created: bool


def webhook_receive(*, provider: str, event_id: str, event_type: str, payload: dict[str, Any]) -> Received:
    """Store the event once; if we act on its type, publish the work in the same transaction.

    A duplicate (the provider retrying) comes back with ``created=False`` and
    changes nothing.

    Django's per-request connection health check (CONN_HEALTH_CHECKS) costs
    a ``SELECT 1`` round trip — a third of this endpoint's time. Intake skips
    it and instead retries once on a dead connection (say, PostgreSQL was
    restarted since the last request). The retry is safe because the insert
    is idempotent: if the first attempt did commit before the connection
    dropped, the second finds the event stored and answers "duplicate".
    """
    params = (provider, event_id, event_type, payload)
    if connection.in_atomic_block:  # a caller's transaction: no reconnecting under it
        return _store(*params)
    connection.health_check_done = True  # type: ignore[attr-defined]  # django-stubs lacks it (Django ≥ 4.1)
    try:
        return _store(*params)
    except (OperationalError, InterfaceError) as exc:
        log.warning("webhook %s %s: database connection lost (%s); reconnecting once", provider, event_id, exc)
        connection.close()
        return _store(*params)


def _store(provider: str, event_id: str, event_type: str, payload: dict[str, Any]) -> Received:
    known = event_type in KNOWN_TYPES.get(provider, set())
    status = WebhookEvent.Status.RECEIVED if known else WebhookEvent.Status.IGNORED
    insert = (
        "INSERT INTO orders_webhookevent (provider, event_id, type, payload, received_at, status, attempts, last_error)"
        " VALUES (%s, %s, %s, %s::jsonb, now(), %s, 0, '') ON CONFLICT (provider, event_id) DO NOTHING"
        " RETURNING id, status"
    )
    params = [provider, event_id, event_type, json.dumps(payload), status]
    # One statement, one round trip: event row + (known types) outbox message + NOTIFY.
    if known:
        rows = outbox_insert_and_publish(
            insert_sql=insert,
            params=params,
            event_type=PROCESS_EVENT,
            aggregate_type="webhook_event",
            payload_key="webhook_event_id",
        )
    else:
        with connection.cursor() as cursor:
            cursor.execute(insert, params)
            rows = cursor.fetchall()
    if not rows:  # the provider retrying: already stored
        pk, stored_status = (
            WebhookEvent.objects.filter(provider=provider, event_id=event_id).values_list("pk", "status").get()
        )
        return Received(pk=pk, status=stored_status, created=False)
    return Received(pk=rows[0][0], status=rows[0][1], created=True)


def handle_webhook_event(event: Event) -> None:
    """Outbox handler (route ``payment.webhook_received`` → queue ``high``)."""
    webhook_process(webhook_event_id=int(event.payload["webhook_event_id"]))


def webhook_process(*, webhook_event_id: int) -> str:
    """Apply one stored event. Runs inside the outbox delivery's transaction;
    raising makes the job retry (5 tries, backoff)."""
    event = WebhookEvent.objects.select_for_update().get(pk=webhook_event_id)
    event.attempts += 1
    if event.status == WebhookEvent.Status.PROCESSED:
        return "already processed"
    try:
        outcome = _apply(event)
    except InvalidWebhook as exc:
        # Stored, signed, but unusable: record why; retrying cannot help.
        event.status, event.last_error = WebhookEvent.Status.FAILED, str(exc)
        event.save(update_fields=["status", "last_error", "attempts"])
        return f"failed: {exc}"
    event.status, event.processed_at, event.last_error = WebhookEvent.Status.PROCESSED, timezone.now(), outcome
    event.save(update_fields=["status", "processed_at", "last_error", "attempts"])
    return outcome


def _apply(event: WebhookEvent) -> str:
    if event.type == SMOKE_TYPE:
        return "smoke test: processed by a worker (no order touched)"
    if event.provider == "standard":
        facts = standard_facts(event.event_id, event.payload)
    else:
        from orders.stripe_events import stripe_apply

        return stripe_apply(event)
    return payment_apply(provider=event.provider, facts=facts)


def webhook_smoke_state(*, event_id: str) -> tuple[str, str] | None:
    """Where a smoke-test event is: (webhook event status, its outbox message's status or "").

    None when this database has no such event (the URL tested is another deployment's).
    """
    from outbox.models import OutboxMessage

    found = WebhookEvent.objects.filter(provider="standard", event_id=event_id).values_list("pk", "status").first()
    if found is None:
        return None
    message = (
        OutboxMessage.objects.filter(aggregate_type="webhook_event", aggregate_id=str(found[0]))
        .values_list("status", flat=True)
        .first()
    )
    return found[1], message or ""


def webhook_smoke_cleanup(*, event_id: str) -> int:
    """Delete one processed smoke-test event: it proves a release, it is not a payment.
    (Its outbox message is processed and goes with the nightly outbox prune.)"""
    deleted, _ = WebhookEvent.objects.filter(
        provider="standard", event_id=event_id, type=SMOKE_TYPE, status=WebhookEvent.Status.PROCESSED
    ).delete()
    return deleted


def payment_apply(*, provider: str, facts: PaymentFacts) -> str:
    """Record a payment fact against its order; the order moves only when it should.

    Runs under the order's row lock, so one order's facts are applied one at a
    time and the matching of refunds to payments below cannot race.
    """
    order = Order.objects.select_for_update().filter(pk=facts.order_id).first()
    if order is None:
        raise InvalidWebhook(f"no order {facts.order_id}")
    if max(len(facts.reference), len(facts.refunded_reference)) > REFERENCE_MAX:
        raise InvalidWebhook(f"payment reference longer than {REFERENCE_MAX} characters")
    mismatch = facts.kind != Payment.Kind.FAILED and (
        facts.amount != order.total or facts.currency != order.currency.upper()
    )
    payment, created = Payment.objects.get_or_create(
        provider=provider,
        reference=facts.reference,
        kind=facts.kind,
        defaults={
            "order": order,
            "amount": facts.amount,
            "currency": facts.currency,
            "mismatch": mismatch,
            "refunded_reference": facts.refunded_reference,
        },
    )
    if not created:
        return "payment already recorded"
    if mismatch:
        log.warning("payment %s for order %s does not match it (%s %s vs %s %s)", facts.reference, order.pk,
                    facts.amount, facts.currency, order.total, order.currency)  # fmt: skip
        return "amount or currency mismatch: order left as it was"
    if facts.kind == Payment.Kind.SUCCEEDED:
        return _payment_succeeded(order, payment)
    if facts.kind == Payment.Kind.REFUNDED:
        return _payment_refunded(order, payment)
    return "payment failure recorded"


def _payment_succeeded(order: Order, payment: Payment) -> str:
    """Pay a PENDING order; money for any other order is flagged for refund —
    unless its refund is already on record (it can arrive first: providers do
    not promise delivery order), or an operator would refund it twice."""
    refunded = _refund_claimed(payment)
    if order.status != Order.Status.PENDING:  # released, or paid already (money paid twice)
        if refunded:
            return f"order is {order.status}; this payment's refund is already on record"
        payment.needs_refund = True
        payment.save(update_fields=["needs_refund"])
        return f"order is {order.status}: payment flagged for refund"
    order_mark_paid(order_id=order.pk)
    # Apply the refund that arrived first now, so "paid, refunded" and
    # "refunded, paid" end the same: REFUNDED, paid once (one order.paid message).
    if refunded and _order_refund(order.pk):
        return "order paid, then refunded (the refund had arrived first)"
    return "order paid"


def _payment_refunded(order: Order, refund: Payment) -> str:
    """A refund moves the order only if it returns the payment that paid it."""
    payment = _refunded_payment(refund)
    if payment is None:
        # Its payment's own event is late (it applies this refund when it
        # comes, above), or it returns money this order never took.
        return f"refund recorded, its payment not yet; order is {order.status}"
    if payment.needs_refund:
        # The money flagged for refund is back: nothing left for an operator to do.
        Payment.objects.filter(pk=payment.pk).update(needs_refund=False)
        return f"refund of the payment flagged for refund recorded; order is {order.status}"
    if _refunds_of(payment).filter(refunded_reference=payment.reference).exclude(pk=refund.pk).exists():
        # Returned already (it was never flagged for that reason): this refund
        # says nothing about the money that paid the order.
        return f"refund recorded; its payment was already refunded; order is {order.status}"
    if _order_refund(order.pk):
        return "order refunded"
    return f"refund recorded; order is {order.status}"


def _refunds_of(payment: Payment) -> QuerySet[Payment]:
    """Full refunds (not mismatching partial ones) from the payment's provider against its order."""
    return Payment.objects.filter(
        order_id=payment.order_id, provider=payment.provider, kind=Payment.Kind.REFUNDED, mismatch=False
    )


def _refund_claimed(payment: Payment) -> bool:
    """Is this payment's refund on record? One naming it, or else one naming
    no payment (Standard Webhooks), which this payment claims: a refund
    returns one payment, so a later second payment still needs its own."""
    refunds = _refunds_of(payment)
    if refunds.filter(refunded_reference=payment.reference).exists():
        return True
    unnamed = refunds.filter(refunded_reference="").order_by("pk").first()
    if unnamed is None:
        return False
    Payment.objects.filter(pk=unnamed.pk).update(refunded_reference=payment.reference)
    return True


def _refunded_payment(refund: Payment) -> Payment | None:
    """The succeeded payment this refund returns, if it is on record.

    A refund naming no payment claims one of its provider's payments on the
    order that no refund returns yet, a payment flagged for refund first (the
    money an operator would otherwise return), and is named after it.
    """
    payments = Payment.objects.filter(
        order_id=refund.order_id, provider=refund.provider, kind=Payment.Kind.SUCCEEDED, mismatch=False
    )
    if refund.refunded_reference:
        return payments.filter(reference=refund.refunded_reference).first()
    returned = _refunds_of(refund).exclude(refunded_reference="").values("refunded_reference")
    payment = payments.exclude(reference__in=returned).order_by("-needs_refund", "pk").first()
    if payment is not None:
        refund.refunded_reference = payment.reference
        refund.save(update_fields=["refunded_reference"])
    return payment


def _order_refund(order_id: int) -> bool:
    """PAID/FULFILLED → REFUNDED; False when the order is in no state to be refunded."""
    paid = [Order.Status.PAID, Order.Status.FULFILLED]
    return bool(Order.objects.filter(pk=order_id, status__in=paid).update(status=Order.Status.REFUNDED))


def webhook_reprocess(*, ids: list[int]) -> int:
    """Operator's "process again": known-type events get a fresh processing message."""
    count = 0
    with transaction.atomic():
        for event in WebhookEvent.objects.select_for_update().filter(pk__in=ids):
            if event.type not in KNOWN_TYPES.get(event.provider, set()):
                continue
            WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED, last_error="")
            outbox.publish(PROCESS_EVENT, {"webhook_event_id": event.pk}, aggregate=("webhook_event", event.pk))
            count += 1
    return count
