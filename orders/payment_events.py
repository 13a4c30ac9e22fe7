"""What the payment providers' events do to orders: each event type's handler,
listed in HANDLERS for ``OrdersConfig.ready()`` to register in the providers' dispatch tables.

Standard Webhooks: ``{"type", "timestamp", "data": {order_id, amount,
currency}}``, amounts in major units, the ``webhook-id`` as the payment's
reference. Stripe: amounts in minor units, the order's pk in the object's
``metadata.order_id``. docs/orders.md."""

from __future__ import annotations

from typing import Any

from orders.models import Payment
from orders.payments import PaymentFacts, payment_apply
from webhooks import fields
from webhooks.models import WebhookEvent
from webhooks.providers import Handle, Validate, Verified
from webhooks.providers.stripe import event_object, major_units, payment_intent_id
from webhooks.transport import InvalidWebhook

STANDARD_KINDS = {
    "payment.succeeded": Payment.Kind.SUCCEEDED,
    "payment.failed": Payment.Kind.FAILED,
    "payment.refunded": Payment.Kind.REFUNDED,
}


def standard_facts(event_id: str, event_type: str, body: dict[str, Any]) -> PaymentFacts:
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidWebhook("envelope has no 'data' object")
    return PaymentFacts(
        kind=STANDARD_KINDS[event_type],
        order_id=fields.integer(data.get("order_id"), "order id"),
        amount=fields.amount(data.get("amount"), "data.amount"),
        currency=fields.currency(data.get("currency")),
        reference=event_id,
    )


def standard_validate(verified: Verified) -> None:
    standard_facts(verified.event_id, verified.event_type, verified.body)


def standard_payment(event: WebhookEvent) -> str:
    return payment_apply(provider=event.provider, facts=standard_facts(event.event_id, event.type, event.payload))


def _stripe_facts(
    kind: str, obj: dict[str, Any], amount_field: str, reference: str, refunded: str = ""
) -> PaymentFacts:
    currency = fields.currency(obj.get("currency"))
    metadata = obj.get("metadata") or {}
    return PaymentFacts(
        kind=kind,
        order_id=fields.integer(metadata.get("order_id"), "order id"),
        amount=major_units(obj.get(amount_field), currency),
        currency=currency,
        reference=reference,
        refunded_reference=refunded,
    )


def _reference(event: WebhookEvent, obj: dict[str, Any]) -> str:
    return str(obj.get("id") or event.event_id)


def stripe_intent_succeeded(event: WebhookEvent) -> str:
    obj = event_object(event)
    facts = _stripe_facts(Payment.Kind.SUCCEEDED, obj, "amount_received", _reference(event, obj))
    return payment_apply(provider=event.provider, facts=facts)


def stripe_checkout_completed(event: WebhookEvent) -> str:
    # Stripe reports one Checkout payment twice: payment_intent.succeeded and
    # checkout.session.completed. Keyed by the PaymentIntent both are one
    # payment, whichever arrives first (keyed by the session's own id, the
    # money was recorded twice, and flagged for refund when the charge's
    # refund came between the two). Sessions without one keep their own id.
    obj = event_object(event)
    reference = payment_intent_id(obj) or _reference(event, obj)
    facts = _stripe_facts(Payment.Kind.SUCCEEDED, obj, "amount_total", reference)
    return payment_apply(provider=event.provider, facts=facts)


def stripe_intent_failed(event: WebhookEvent) -> str:
    obj = event_object(event)
    facts = _stripe_facts(Payment.Kind.FAILED, obj, "amount", _reference(event, obj))
    return payment_apply(provider=event.provider, facts=facts)


def stripe_charge_refunded(event: WebhookEvent) -> str:
    # The charge names the PaymentIntent whose money it returns: the reference
    # that payment is recorded under (both succeeded handlers above).
    obj = event_object(event)
    facts = _stripe_facts(
        Payment.Kind.REFUNDED, obj, "amount_refunded", _reference(event, obj), refunded=payment_intent_id(obj)
    )
    return payment_apply(provider=event.provider, facts=facts)


# The dispatch-table entries OrdersConfig.ready() registers: (provider, event type, handler, intake check).
HANDLERS: list[tuple[str, str, Handle, Validate | None]] = [
    *(("standard", event_type, standard_payment, standard_validate) for event_type in STANDARD_KINDS),
    ("stripe", "payment_intent.succeeded", stripe_intent_succeeded, None),
    ("stripe", "checkout.session.completed", stripe_checkout_completed, None),
    ("stripe", "payment_intent.payment_failed", stripe_intent_failed, None),
    ("stripe", "charge.refunded", stripe_charge_refunded, None),
]
