"""The inbound webhook endpoints. Order of work: size, signature on the raw
body, JSON, envelope, then store (event + outbox message in one statement),
then 200.

Status codes: 200 stored (or duplicate, or a type nothing handles — recorded
and ignored); 400 bad/missing signature or malformed JSON or envelope, or
content PostgreSQL cannot store (nothing stored: the same bytes would fail
again, so the provider must not retry them); 413 body over 1 MB; 503 database
unreachable, so the provider retries. docs/webhooks.md."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webhooks.intake import webhook_receive
from webhooks.providers import PROVIDERS, Account, Provider
from webhooks.transport import MAX_BODY, InvalidWebhook, check_identity, read_body

log = logging.getLogger(__name__)


def _error(status: int, message: str) -> Response:
    return Response({"error": message}, status=status)


class _JSONOnly(BaseContentNegotiation):
    """Webhook senders are machines that read the status code: always answer
    JSON, without parsing their Accept header on every delivery."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class WebhookView(APIView):
    """One provider's endpoint (``provider`` names it in PROVIDERS)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    # Machines call this: JSON only, no content negotiation or browsable API,
    # no throttling (providers retry on their own schedule).
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONOnly
    throttle_classes: list[Any] = []
    provider = ""

    def post(self, request: Request) -> Response:
        return self.receive(request, PROVIDERS[self.provider], None)

    def receive(self, request: Request, provider: Provider, account: Account | None) -> Response:
        raw = read_body(request._request)
        if raw is None:
            return _error(413, f"body over {MAX_BODY} bytes")
        try:
            verified = provider.verify(request.headers, raw, account)
            handler = provider.handlers.get(verified.event_type)
            if handler is not None and handler.validate is not None:
                handler.validate(verified)  # an envelope its handler cannot use: a 400, not a failed event
            check_identity(verified.event_id, verified.event_type)
        except InvalidWebhook as exc:
            return _error(400, str(exc))
        try:
            received = webhook_receive(
                provider=provider.name,
                event_id=verified.event_id,
                event_type=verified.event_type,
                payload=verified.body,
                account=account.key if account is not None else "",
                process_event=provider.process_event,
            )
        except (OperationalError, InterfaceError) as exc:
            log.error("webhook %s %s not stored, database unreachable: %s", provider.name, verified.event_id, exc)
            return _error(503, "temporarily unable to store the event; retry later")
        except DataError as exc:
            # PostgreSQL refused the content itself (a NUL character, a lone
            # surrogate, a number jsonb cannot hold): the same bytes fail every
            # time, so a 400 the provider will not retry for days, not a 503.
            log.warning("webhook %s %s refused by the database: %s", provider.name, verified.event_id, exc)
            return _error(400, f"event content cannot be stored: {str(exc).splitlines()[0]}")
        except DatabaseError as exc:
            log.error("webhook %s %s not stored: %s", provider.name, verified.event_id, exc)
            return _error(503, "temporarily unable to store the event; retry later")
        return Response({"status": "stored" if received.created else "duplicate", "event": received.status})


class PaymentWebhookView(WebhookView):
    """``POST /api/webhooks/payments/`` — Standard Webhooks, PAYMENT_WEBHOOK_SECRET
    (several secrets, space-separated, during rotation)."""

    provider = "standard"


class StripeWebhookView(WebhookView):
    """``POST /api/webhooks/stripe/`` — ``Stripe-Signature`` against STRIPE_WEBHOOK_SECRET."""

    provider = "stripe"


class AccountWebhookView(WebhookView):
    """A per-account provider's endpoint: the URL names the account (a tenant's
    slug) whose secrets verify it. An account that does not exist or has no
    secret for this provider is a 404 and stores nothing."""

    def post(self, request: Request, account: str = "") -> Response:
        provider = PROVIDERS[self.provider]
        found = provider.accounts(account) if provider.accounts is not None else None
        if found is None or not found.secrets:
            read_body(request._request)  # read (and drop) it, so the sender sees the 404, not a reset
            return _error(404, f"no {provider.name} webhook is configured at this URL")
        return self.receive(request, provider, found)


class CalendarWebhookView(AccountWebhookView):
    """``POST /api/webhooks/calendar/<tenant-slug>/`` — Cal.com, ``X-Cal-Signature-256``
    against the tenant's calendar webhook secret."""

    provider = "calcom"


class VoiceWebhookView(AccountWebhookView):
    """``POST /api/webhooks/voice/<tenant-slug>/`` — Retell, ``x-retell-signature``
    against the tenant's voice-agent API key."""

    provider = "retell"
