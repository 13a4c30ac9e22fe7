"""Standard Webhooks signatures (https://www.standardwebhooks.com/), made by
the ``standardwebhooks`` library — the same one receivers verify with — so
the protocol has one owner. During a secret rotation every live secret signs
and the header carries all the signatures, space-separated, as the spec
allows; a receiver holding either secret verifies."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from lib import secretbox

PREFIX = "whsec_"
USER_AGENT = "Vito-Webhooks/1.0 (+https://github.com/vito-business-os; Standard Webhooks)"


def new_secret() -> str:
    """A ``whsec_`` secret: 24 random bytes, base64 (Svix's format)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def seal(secret: str) -> tuple[str, str]:
    """(encrypted, hint) of a secret, for EndpointSecret."""
    return secretbox.encrypt(secret), secret[-4:]


def headers(msg_id: str, at: datetime, body: str, sealed: Sequence[str]) -> dict[str, str]:
    """The delivery's headers, signed by every secret in ``sealed`` (encrypted)."""
    from standardwebhooks import Webhook  # here: ~6 MB most processes never need

    signatures = " ".join(Webhook(secretbox.decrypt(s)).sign(msg_id, at, body) for s in sealed)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
