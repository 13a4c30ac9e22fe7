"""Payment webhooks: intake (store first, in one transaction with the outbox
message that will process it) and processing (on the ``high`` queue)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

import outbox
from orders.models import Order, Payment, WebhookEvent
from orders.services import OrderNotPending, order_mark_paid
from outbox.routes import Event
from outbox.services import outbox_insert_and_publish

log = logging.getLogger(__name__)

PROCESS_EVENT = "payment.webhook_received"


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


KNOWN_TYPES = {
    "standard": {"payment.succeeded", "payment.failed", "payment.refunded"},
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
    if event.provider == "standard":
        facts = standard_facts(event.event_id, event.payload)
    else:
        from orders.stripe_events import stripe_apply

        return stripe_apply(event)
    return payment_apply(provider=event.provider, facts=facts)


def payment_apply(*, provider: str, facts: PaymentFacts) -> str:
    """Record a payment fact against its order; the order moves only when it should."""
    order = Order.objects.select_for_update().filter(pk=facts.order_id).first()
    if order is None:
        raise InvalidWebhook(f"no order {facts.order_id}")
    mismatch = facts.kind != Payment.Kind.FAILED and (
        facts.amount != order.total or facts.currency != order.currency.upper()
    )
    needs_refund = facts.kind == Payment.Kind.SUCCEEDED and not mismatch and order.status == Order.Status.CANCELLED
    payment, created = Payment.objects.get_or_create(
        provider=provider,
        reference=facts.reference,
        kind=facts.kind,
        defaults={
            "order": order,
            "amount": facts.amount,
            "currency": facts.currency,
            "mismatch": mismatch,
            "needs_refund": needs_refund,
        },
    )
    if not created:
        return "payment already recorded"
    if mismatch:
        log.warning("payment %s for order %s does not match it (%s %s vs %s %s)", facts.reference, order.pk,
                    facts.amount, facts.currency, order.total, order.currency)  # fmt: skip
        return "amount or currency mismatch: order left as it was"
    if facts.kind == Payment.Kind.SUCCEEDED:
        if needs_refund:
            return "order was already released: payment flagged for refund"
        try:
            order_mark_paid(order_id=order.pk)
        except OrderNotPending:
            payment.needs_refund = True
            payment.save(update_fields=["needs_refund"])
            return f"order is {order.status}: payment flagged for refund"
        # Providers do not promise delivery order: the refund of this money may
        # have arrived (and been recorded, see below) before the payment did.
        # Apply it now, so "paid, refunded" and "refunded, paid" end the same:
        # REFUNDED, paid once (one order.paid message), one refund.
        if _refund_on_record(order.pk) and _order_refund(order.pk):
            return "order paid, then refunded (the refund had arrived first)"
        return "order paid"
    if facts.kind == Payment.Kind.REFUNDED:
        if _order_refund(order.pk):
            return "order refunded"
        # Still PENDING (the payment's own event is late) or released: the
        # refund is on record and a late payment applies it (above).
        return f"refund recorded; order is {order.status}"
    return "payment failure recorded"


def _refund_on_record(order_id: int) -> bool:
    """A refund of the whole order (not a mismatching partial one) has been recorded."""
    return Payment.objects.filter(order_id=order_id, kind=Payment.Kind.REFUNDED, mismatch=False).exists()


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
