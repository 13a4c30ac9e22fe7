"""Standard Webhooks (standardwebhooks.com): ``webhook-id``, ``webhook-timestamp``
and ``webhook-signature`` headers, keyed by PAYMENT_WEBHOOK_SECRET (several
secrets, space-separated, during rotation). The body is ``{"type", "timestamp",
"data"}``; the event id is the ``webhook-id`` header."""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from django.conf import settings
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.providers.base import Account, Provider, Verified
from webhooks.transport import InvalidWebhook, strict_json

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def verify(headers: Mapping[str, str], raw: bytes, account: Account | None = None) -> Verified:
    secrets = settings.PAYMENT_WEBHOOK_SECRET.split()
    if not secrets:
        raise InvalidWebhook("PAYMENT_WEBHOOK_SECRET is not configured; refusing unsigned events")
    signed = {name: headers.get(name, "") for name in HEADERS}
    if not all(signed.values()):
        raise InvalidWebhook("missing webhook-id, webhook-timestamp or webhook-signature header")
    reason = ""
    for secret in secrets:
        try:
            Webhook(secret).verify(raw, signed, json_parse=False)
            break
        except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
            reason = f"signature verification failed: {exc}"
    else:
        raise InvalidWebhook(reason)
    body = strict_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise InvalidWebhook("expected a JSON object with a string 'type'")
    return Verified(signed["webhook-id"], body["type"], body)


PROVIDER = Provider("standard", verify)
