"""Stripe events: payments against orders, and the tenant's own subscription.

Amounts arrive in minor units (cents); the order's pk is in the object's
``metadata.order_id``; a tenant is found by ``metadata.tenant_id`` or its
Stripe customer id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from orders.models import Payment, WebhookEvent
from orders.webhook_services import InvalidWebhook, PaymentFacts, _currency, _order_id, payment_apply
from tenants.models import Tenant

# ISO 4217 currencies Stripe treats as having no minor unit.
ZERO_DECIMAL = {
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "JPY",
    "KMF",
    "KRW",
    "MGA",
    "PYG",
    "RWF",
    "UGX",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
}


def _major(amount: Any, currency: str) -> Decimal:
    if not isinstance(amount, int) or amount < 0:
        raise InvalidWebhook(f"amount must be a non-negative integer of minor units, got {amount!r}")
    return Decimal(amount) if currency in ZERO_DECIMAL else (Decimal(amount) / 100).quantize(Decimal("0.01"))


def _object(event: WebhookEvent) -> dict[str, Any]:
    obj = (event.payload.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise InvalidWebhook("event has no data.object")
    return obj


def _facts(kind: str, obj: dict[str, Any], amount_field: str, reference: str, refunded: str = "") -> PaymentFacts:
    currency = _currency(obj.get("currency"))
    metadata = obj.get("metadata") or {}
    return PaymentFacts(
        kind=kind,
        order_id=_order_id(metadata.get("order_id")),
        amount=_major(obj.get(amount_field), currency),
        currency=currency,
        reference=reference,
        refunded_reference=refunded,
    )


def _intent(obj: dict[str, Any]) -> str:
    """The object's PaymentIntent id (expanded or not), or "" when it has none."""
    intent = obj.get("payment_intent")
    intent = intent.get("id") if isinstance(intent, dict) else intent
    return intent if isinstance(intent, str) else ""


def stripe_apply(event: WebhookEvent) -> str:
    obj = _object(event)
    ref = str(obj.get("id") or event.event_id)
    if event.type == "payment_intent.succeeded":
        return payment_apply(provider="stripe", facts=_facts(Payment.Kind.SUCCEEDED, obj, "amount_received", ref))
    if event.type == "checkout.session.completed":
        # Stripe reports one Checkout payment twice: payment_intent.succeeded
        # and checkout.session.completed. Keyed by the PaymentIntent both are one
        # payment, whichever arrives first (keyed by the session's own id, the
        # money was recorded twice, and flagged for refund when the charge's
        # refund came between the two). Sessions without one keep their own id.
        ref = _intent(obj) or ref
        return payment_apply(provider="stripe", facts=_facts(Payment.Kind.SUCCEEDED, obj, "amount_total", ref))
    if event.type == "payment_intent.payment_failed":
        return payment_apply(provider="stripe", facts=_facts(Payment.Kind.FAILED, obj, "amount", ref))
    if event.type == "charge.refunded":
        # The charge names the PaymentIntent whose money it returns: the
        # reference that payment is recorded under (both events above).
        facts = _facts(Payment.Kind.REFUNDED, obj, "amount_refunded", ref, refunded=_intent(obj))
        return payment_apply(provider="stripe", facts=facts)
    return _subscription(event.type, obj)


def _subscription(event_type: str, obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    tenants = Tenant.objects.all()
    if metadata.get("tenant_id") is not None:
        tenants = tenants.filter(pk=_order_id(metadata["tenant_id"]))
    elif obj.get("customer"):
        tenants = tenants.filter(stripe_customer_id=str(obj["customer"]))
    else:
        raise InvalidWebhook("subscription event names neither metadata.tenant_id nor a customer")
    status = {
        "invoice.payment_succeeded": "active",
        "invoice.payment_failed": "past_due",
        "customer.subscription.deleted": "canceled",
    }[event_type]
    updated = tenants.update(subscription_status=status)
    if not updated:
        raise InvalidWebhook("no tenant for this subscription event")
    return f"tenant subscription {status}"
