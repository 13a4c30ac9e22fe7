"""Payments and refunds against orders: the rules that decide when an order
is paid, flagged for refund or refunded, whatever provider reported the money
and in whatever order its events arrived. docs/orders.md."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

import outbox
from orders.models import Order, Payment
from orders.services import order_mark_paid
from webhooks.transport import InvalidWebhook

log = logging.getLogger(__name__)

REFERENCE_MAX = 255  # Payment.reference and .refunded_reference


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
    if facts.kind == Payment.Kind.REFUNDED:
        # Every refund recorded is money back to the customer, whatever it does
        # to the order (a partial one, one of money flagged for refund): the
        # tenant hears of each once, as the row is created once.
        outbox.publish(
            "payment.refunded",
            {"order_id": order.pk, "number": order.number, "amount": str(payment.amount), "currency": payment.currency},
            aggregate=("order", order.pk),
            tenant=order.tenant_id,
        )
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
