"""Webhook endpoints. Order of work: size, signature on the raw body, JSON,
envelope, then store (event + outbox message in one transaction), then 200.

Status codes: 200 stored (or duplicate, or unknown type — recorded and
ignored); 400 bad/missing signature or malformed JSON or envelope, or content
PostgreSQL cannot store (nothing stored: the same bytes would fail again, so
the provider must not retry them); 413 body over 1 MB; 503 database
unreachable, so the provider retries.

docs/orders.md."""

from __future__ import annotations

import binascii
import json
import logging
import time
from typing import Any

import stripe
from django.conf import settings
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import HttpRequest
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from orders.webhook_services import KNOWN_TYPES, SMOKE_TYPE, InvalidWebhook, standard_facts, webhook_receive

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
TOLERANCE = 300  # seconds either side of our clock, as Standard Webhooks
# The model's column sizes: a longer id or type is the sender's error (400), not a 503.
MAX_EVENT_ID = 255
MAX_EVENT_TYPE = 100


def _reject_constant(name: str) -> Any:
    raise InvalidWebhook(f"JSON constant {name} is not allowed")


def _json(raw: bytes) -> Any:
    """Strict JSON: NaN/Infinity (which PostgreSQL's jsonb refuses) are a 400, not a 503.

    Python's parser also raises plain ValueError (an integer of more than 4,300
    digits) and RecursionError (arrays nested ~1,000 deep, which a 1 MB body
    easily holds): both are the sender's malformed JSON, a 400, not a 500.
    """
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidWebhook("JSON nested too deeply") from None
    except InvalidWebhook:
        raise
    except ValueError as exc:  # JSONDecodeError included
        raise InvalidWebhook(f"malformed JSON: {exc}") from None


def _checked(event_id: str, event_type: str) -> None:
    if not event_id or len(event_id) > MAX_EVENT_ID:
        raise InvalidWebhook(f"event id must be 1 to {MAX_EVENT_ID} characters, got {len(event_id)}")
    if len(event_type) > MAX_EVENT_TYPE:
        raise InvalidWebhook(f"event type must be at most {MAX_EVENT_TYPE} characters, got {len(event_type)}")
    for name, value in (("id", event_id), ("type", event_type)):
        _storable_text(name, value)


def _storable_text(name: str, value: str) -> None:
    """The id and type go to text columns as query parameters (the payload goes
    as JSON text, where jsonb's own refusal is a DataError, handled below).
    psycopg refuses a lone surrogate (JSON ``"\\ud800"``) with a
    UnicodeEncodeError before PostgreSQL sees it — no DataError, so it would be
    a 500 — and PostgreSQL text refuses NUL: the sender's error, a 400."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start : exc.end]
        raise InvalidWebhook(
            f"event {name} is not valid Unicode text: lone surrogate {bad!r} at position {exc.start}"
        ) from None
    if "\x00" in value:
        raise InvalidWebhook(f"event {name} contains a NUL character, which PostgreSQL text cannot hold")


def _read_body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is over MAX_BODY (a 413).

    A chunked request has no Content-Length. Under WSGI Django then reads its
    body as empty (every signature failing, a misleading 400 — and a 2 MB
    chunked body not a 413), so read the server's decoded ``wsgi.input``
    ourselves. Under ASGI there is no ``wsgi.input``: the server has already
    de-chunked the body and Django's own stream holds all of it. Either way
    read never more than MAX_BODY + 1 bytes.
    """
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not length:
        wsgi_input = request.META.get("wsgi.input")
        raw = wsgi_input.read(MAX_BODY + 1) if wsgi_input is not None else request.read(MAX_BODY + 1)
    else:
        raw = request.body
    return None if len(raw) > MAX_BODY else raw


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
        raw = _read_body(request._request)
        if raw is None:
            return _error(413, f"body over {MAX_BODY} bytes")
        try:
            event_id, event_type, payload = self.verify(request, raw)
            _checked(event_id, event_type)
        except InvalidWebhook as exc:
            return _error(400, str(exc))
        try:
            received = webhook_receive(
                provider=self.provider, event_id=event_id, event_type=event_type, payload=payload
            )
        except (OperationalError, InterfaceError) as exc:
            log.error("webhook %s %s not stored, database unreachable: %s", self.provider, event_id, exc)
            return _error(503, "temporarily unable to store the event; retry later")
        except DataError as exc:
            # PostgreSQL refused the content itself (a NUL character, a lone
            # surrogate, a number jsonb cannot hold): the same bytes fail every
            # time, so a 400 the provider will not retry for days, not a 503.
            log.warning("webhook %s %s refused by the database: %s", self.provider, event_id, exc)
            return _error(400, f"event content cannot be stored: {str(exc).splitlines()[0]}")
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
        if body["type"] in KNOWN_TYPES["standard"] and body["type"] != SMOKE_TYPE:
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
                raw.decode("utf-8"), signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=TOLERANCE
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidWebhook(f"signature verification failed: {exc}") from None
        _not_from_the_future(signature)
        body = _json(raw)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
            raise InvalidWebhook("expected a Stripe event object with 'id' and 'type'")
        return body["id"], body["type"], body


def _not_from_the_future(signature: str) -> None:
    """Stripe's library rejects only timestamps more than ``tolerance`` old.
    Also refuse ones more than TOLERANCE ahead, as Standard Webhooks does, so a
    signed request is replayable for at most that window either side of now,
    whatever timestamp it carries."""
    stamp = _stripe_timestamp(signature)
    if stamp is not None and stamp > time.time() + TOLERANCE:
        raise InvalidWebhook(f"signature verification failed: timestamp {stamp} is more than {TOLERANCE} s ahead")


def _stripe_timestamp(signature: str) -> int | None:
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
