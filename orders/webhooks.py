"""Webhook endpoints. Order of work: size, signature on the raw body, JSON,
envelope, then store (event + outbox message in one transaction), then 200.

Status codes: 200 stored (or duplicate, or unknown type — recorded and
ignored); 400 bad/missing signature or malformed JSON or envelope, nothing
stored; 413 body over 1 MB; 503 database unreachable, so the provider retries.
"""

from __future__ import annotations

import binascii
import json
import logging
from typing import Any

import stripe
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from orders.webhook_services import KNOWN_TYPES, InvalidWebhook, standard_facts, webhook_receive

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise InvalidWebhook(f"JSON constant {name} is not allowed")


def _json(raw: bytes) -> Any:
    """Strict JSON: NaN/Infinity (which PostgreSQL's jsonb refuses) are a 400, not a 503."""
    return json.loads(raw, parse_constant=_reject_constant)


def _error(status: int, message: str) -> Response:
    return Response({"error": message}, status=status)


class _JSONOnly(BaseContentNegotiation):
    """Webhook senders are machines that read the status code: always answer
    JSON, without parsing their Accept header on every delivery."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class _WebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    # Machines call this: JSON only, no content negotiation or browsable API,
    # no throttling (providers retry on their own schedule).
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONOnly
    throttle_classes: list[Any] = []
    provider = ""

    def post(self, request: Request) -> Response:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > MAX_BODY:
            return _error(413, f"body over {MAX_BODY} bytes")
        raw = request._request.body
        if len(raw) > MAX_BODY:
            return _error(413, f"body over {MAX_BODY} bytes")
        try:
            event_id, event_type, payload = self.verify(request, raw)
        except (InvalidWebhook, json.JSONDecodeError) as exc:
            return _error(400, str(exc))
        try:
            received = webhook_receive(
                provider=self.provider, event_id=event_id, event_type=event_type, payload=payload
            )
        except (OperationalError, InterfaceError) as exc:
            log.error("webhook %s %s not stored, database unreachable: %s", self.provider, event_id, exc)
            return _error(503, "temporarily unable to store the event; retry later")
        except DatabaseError as exc:
            log.error("webhook %s %s not stored: %s", self.provider, event_id, exc)
            return _error(503, "temporarily unable to store the event; retry later")
        return Response({"status": "stored" if received.created else "duplicate", "event": received.status})

    def verify(self, request: Request, raw: bytes) -> tuple[str, str, dict[str, Any]]:
        raise NotImplementedError


class PaymentWebhookView(_WebhookView):
    """``POST /api/webhooks/payments/`` — Standard Webhooks, PAYMENT_WEBHOOK_SECRET
    (several secrets, space-separated, during rotation)."""

    provider = "standard"

    def verify(self, request: Request, raw: bytes) -> tuple[str, str, dict[str, Any]]:
        secrets = settings.PAYMENT_WEBHOOK_SECRET.split()
        if not secrets:
            raise InvalidWebhook("PAYMENT_WEBHOOK_SECRET is not configured; refusing unsigned events")
        headers = {k: request.headers.get(k, "") for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        reason = "missing webhook-id, webhook-timestamp or webhook-signature header"
        if all(headers.values()):
            for secret in secrets:
                try:
                    Webhook(secret).verify(raw, headers, json_parse=False)
                    break
                except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
                    reason = f"signature verification failed: {exc}"
            else:
                raise InvalidWebhook(reason)
        else:
            raise InvalidWebhook(reason)
        body = _json(raw)
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise InvalidWebhook("expected a JSON object with a string 'type'")
        if body["type"] in KNOWN_TYPES["standard"]:
            standard_facts(headers["webhook-id"], body)  # validate now: a bad envelope is a 400
        return headers["webhook-id"], body["type"], body


class StripeWebhookView(_WebhookView):
    """``POST /api/webhooks/stripe/`` — ``Stripe-Signature`` against STRIPE_WEBHOOK_SECRET."""

    provider = "stripe"

    def verify(self, request: Request, raw: bytes) -> tuple[str, str, dict[str, Any]]:
        if not settings.STRIPE_WEBHOOK_SECRET:
            raise InvalidWebhook("STRIPE_WEBHOOK_SECRET is not configured; refusing unsigned events")
        signature = request.headers.get("Stripe-Signature", "")
        if not signature:
            raise InvalidWebhook("missing Stripe-Signature header")
        try:
            stripe.WebhookSignature.verify_header(
                raw.decode("utf-8"), signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=300
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidWebhook(f"signature verification failed: {exc}") from None
        body = _json(raw)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
            raise InvalidWebhook("expected a Stripe event object with 'id' and 'type'")
        return body["id"], body["type"], body
