"""Stripe: ``Stripe-Signature`` against STRIPE_WEBHOOK_SECRET, the event
object's ``id`` and ``type``; and the payload conventions its handlers share
(the ``data.object``, amounts in minor units, the PaymentIntent id)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings

from webhooks.providers.base import Account, Provider, Verified
from webhooks.transport import TOLERANCE, InvalidWebhook, strict_json

if TYPE_CHECKING:
    from webhooks.models import WebhookEvent

# ISO 4217 currencies Stripe treats as having no minor unit.
ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)


def verify(headers: Mapping[str, str], raw: bytes, account: Account | None = None) -> Verified:
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise InvalidWebhook("STRIPE_WEBHOOK_SECRET is not configured; refusing unsigned events")
    signature = headers.get("Stripe-Signature", "")
    if not signature:
        raise InvalidWebhook("missing Stripe-Signature header")
    # Imported here, not at the top: stripe-python adds ~28 MB to every process
    # that loads the URLconf's providers, workers included (docs/benchmarks.md, worker RSS).
    import stripe

    try:
        stripe.WebhookSignature.verify_header(
            raw.decode("utf-8"), signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=TOLERANCE
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidWebhook(f"signature verification failed: {exc}") from None
    not_from_the_future(signature)
    body = strict_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
        raise InvalidWebhook("expected a Stripe event object with 'id' and 'type'")
    return Verified(body["id"], body["type"], body)


def not_from_the_future(signature: str) -> None:
    """Stripe's library rejects only timestamps more than ``tolerance`` old.
    Also refuse ones more than TOLERANCE ahead, as Standard Webhooks does, so a
    signed request is replayable for at most that window either side of now,
    whatever timestamp it carries."""
    stamp = _timestamp(signature)
    if stamp is not None and stamp > time.time() + TOLERANCE:
        raise InvalidWebhook(f"signature verification failed: timestamp {stamp} is more than {TOLERANCE} s ahead")


def _timestamp(signature: str) -> int | None:
    """The timestamp the signature was verified with, read exactly as
    ``stripe.WebhookSignature._get_timestamp_and_signatures`` reads it
    (stripe-python 16.1.0, a private method, hence mirrored rather than
    called): ``split("=", 2)`` of each comma-separated item, the first item
    named ``t``, ``int()`` of its value. None where that parse fails: such a
    header is stripe's verification to reject, not an exception of ours."""
    items = [item.split("=", 2) for item in signature.split(",")]
    try:
        # Stripe's own expression (not next()): it reads every "t" item, so a bare "t" anywhere fails.
        return int([item[1] for item in items if item[0] == "t"][0])  # noqa: RUF015
    except (IndexError, ValueError):
        return None


def event_object(event: WebhookEvent) -> dict[str, Any]:
    """The event's ``data.object`` (a PaymentIntent, Charge, Invoice…)."""
    obj = (event.payload.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise InvalidWebhook("event has no data.object")
    return obj


def major_units(minor: Any, currency: str) -> Decimal:
    """Stripe's integer minor units (cents) as a decimal amount in major units."""
    if not isinstance(minor, int) or minor < 0:
        raise InvalidWebhook(f"amount must be a non-negative integer of minor units, got {minor!r}")
    return Decimal(minor) if currency in ZERO_DECIMAL else (Decimal(minor) / 100).quantize(Decimal("0.01"))


def payment_intent_id(obj: dict[str, Any]) -> str:
    """The object's PaymentIntent id (expanded or not), or "" when it has none."""
    intent = obj.get("payment_intent")
    intent = intent.get("id") if isinstance(intent, dict) else intent
    return intent if isinstance(intent, str) else ""


PROVIDER = Provider("stripe", verify)
