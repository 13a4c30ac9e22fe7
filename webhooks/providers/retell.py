"""Retell (a tenant's phone agent): ``x-retell-signature: v=<ms>,d=<hex>``,
the hex HMAC-SHA256 of the raw body followed by the timestamp in
milliseconds, keyed by the tenant's Retell API key — what the Retell SDK's
``Retell.verify`` checks, refusing a timestamp more than five minutes from
our clock. The body is ``{"event", "call": {…}}``; the event id is the call's
id and the event name (Retell sends each once per call, and retries it)."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhooks.providers.base import Account, Provider, Verified
from webhooks.transport import TOLERANCE, InvalidWebhook, strict_json

NAME = "retell"
SIGNATURE_HEADER = "x-retell-signature"
_SIGNATURE = re.compile(r"v=(\d{1,16}),d=([0-9a-f]{64})")


def signature(api_key: str, raw: bytes, timestamp_ms: int) -> str:
    digest = hmac.new(api_key.encode(), raw + str(timestamp_ms).encode(), hashlib.sha256).hexdigest()
    return f"v={timestamp_ms},d={digest}"


def verify(
    headers: Mapping[str, str], raw: bytes, account: Account | None = None, *, now: float | None = None
) -> Verified:
    if account is None or not account.secrets:
        raise InvalidWebhook("no voice-agent API key is configured for this account")
    given = headers.get(SIGNATURE_HEADER, "").strip()
    match = _SIGNATURE.fullmatch(given)
    if match is None:
        raise InvalidWebhook(f"missing or malformed {SIGNATURE_HEADER} header (expected v=<ms>,d=<64 hex>)")
    stamp = int(match.group(1))
    skew = abs((now if now is not None else time.time()) * 1000 - stamp) / 1000
    if skew > TOLERANCE:
        raise InvalidWebhook(f"signature verification failed: timestamp is {skew:.0f} s from now (limit {TOLERANCE} s)")
    matches = [
        hmac.compare_digest(signature(key, raw, stamp), f"v={stamp},d={match.group(2)}") for key in account.secrets
    ]
    if not any(matches):
        raise InvalidWebhook(f"signature verification failed: {SIGNATURE_HEADER} matches no API key of this account")
    body = strict_json(raw)
    call = body.get("call") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("event"), str) or not isinstance(call, dict):
        raise InvalidWebhook("expected a Retell webhook object with a string 'event' and a 'call' object")
    call_id = call.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidWebhook("the call has no 'call_id'")
    return Verified(f"{call_id}:{body['event']}", body["event"], body)


PROVIDER = Provider(NAME, verify, process_event="voice.webhook_received", per_account=True)


# ---- the call in a call_* payload -------------------------------------------

STARTED, ENDED, ANALYZED = "call_started", "call_ended", "call_analyzed"


@dataclass(frozen=True)
class CallReport:
    """What a call_* event says about the call. ``analysis`` is the post-call
    analysis's ``custom_analysis_data`` (the fields the tenant's agent is set
    up to extract), None until Retell has analysed the call."""

    call_id: str
    agent_id: str
    direction: str
    from_number: str
    to_number: str
    call_status: str
    started_at: datetime | None
    ended_at: datetime | None
    summary: str
    analysis: dict[str, Any] | None


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _ms(obj: dict[str, Any], key: str) -> datetime | None:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 10**14:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def parse_call(body: dict[str, Any]) -> CallReport:
    call = body["call"]  # verify() checked it is an object with a call_id
    analysis = call.get("call_analysis")
    analysis = analysis if isinstance(analysis, dict) else None
    custom = analysis.get("custom_analysis_data") if analysis is not None else None
    return CallReport(
        call_id=call["call_id"],
        agent_id=_text(call, "agent_id"),
        direction=_text(call, "direction"),
        from_number=_text(call, "from_number"),
        to_number=_text(call, "to_number"),
        call_status=_text(call, "call_status"),
        started_at=_ms(call, "start_timestamp"),
        ended_at=_ms(call, "end_timestamp"),
        summary=_text(analysis, "call_summary") if analysis is not None else "",
        analysis=(custom if isinstance(custom, dict) else {}) if analysis is not None else None,
    )
