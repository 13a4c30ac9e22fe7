"""Payloads in the providers' documented shapes, signed with their own
algorithms, and the plumbing to post them over real HTTP and process them
with a real relay and worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta
from typing import Any

from retell.lib.webhook_auth import symmetric as retell_signing

from appointments.models import ProviderSecret
from appointments.services import provider_secret_set
from outbox.services import outbox_relay_drain
from tenants.models import Tenant
from tests.queueing.conftest import run_worker

CAL_SECRET = "cal-webhook-secret-0123456789"
RETELL_KEY = "key_" + "a1b2c3d4e5f6a7b8c9d0e1f2"


def give_secrets(tenant: Tenant) -> None:
    provider_secret_set(tenant=tenant, provider=ProviderSecret.Provider.CALENDAR, secret=CAL_SECRET)
    provider_secret_set(tenant=tenant, provider=ProviderSecret.Provider.VOICE, secret=RETELL_KEY)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own live server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


# ---- Cal.com -----------------------------------------------------------------


def cal_signed(body: bytes, secret: str = CAL_SECRET) -> dict[str, str]:
    """Cal.com's scheme: hex HMAC-SHA256 of the raw body, X-Cal-Signature-256."""
    return {"X-Cal-Signature-256": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def cal_event(
    trigger: str,
    *,
    uid: str,
    starts_at: datetime,
    minutes: int = 30,
    previous_uid: str = "",
    attendee: str = "Jane Doe",
    email: str = "jane.doe@example.com",
    organizer_id: int = 5,
    event_type_id: int = 7,
    reason: str = "",
) -> bytes:
    """A BOOKING_* webhook as Cal.com sends it (docs: cal.com/docs/developing/guides/automation/webhooks)."""
    payload: dict[str, Any] = {
        "type": "30min",
        "title": f"30 Min Meeting between Pro Example and {attendee}",
        "description": "",
        "additionalNotes": "",
        "customInputs": {},
        "startTime": _iso(starts_at),
        "endTime": _iso(starts_at + timedelta(minutes=minutes)),
        "organizer": {
            "id": organizer_id,
            "name": "Pro Example",
            "email": "pro@example.com",
            "username": "pro",
            "timeZone": "Europe/Berlin",
            "language": {"locale": "en"},
            "timeFormat": "h:mma",
        },
        "responses": {
            "name": {"label": "your_name", "value": attendee},
            "email": {"label": "email_address", "value": email},
            "attendeePhoneNumber": {"label": "phone_number", "value": "+49 30 1234567"},
        },
        "userFieldsResponses": {},
        "attendees": [{"email": email, "name": attendee, "timeZone": "Europe/Berlin", "language": {"locale": "en"}}],
        "location": "integrations:daily",
        "destinationCalendar": None,
        "hideCalendarNotes": False,
        "requiresConfirmation": None,
        "eventTypeId": event_type_id,
        "seatsShowAttendees": True,
        "seatsPerTimeSlot": None,
        "uid": uid,
        "eventTitle": "Consultation",
        "eventDescription": None,
        "price": 0,
        "currency": "usd",
        "length": minutes,
        "bookingId": abs(hash(uid)) % 100000,
        "metadata": {"videoCallUrl": f"https://app.cal.com/video/{uid}"},
        "status": "CANCELLED" if trigger == "BOOKING_CANCELLED" else "ACCEPTED",
    }
    if previous_uid:
        payload["rescheduleUid"] = previous_uid
        payload["rescheduleId"] = abs(hash(previous_uid)) % 100000
    if reason:
        payload["cancellationReason"] = reason
    return json.dumps(
        {"triggerEvent": trigger, "createdAt": _iso(datetime.now().astimezone()), "payload": payload}
    ).encode()


def new_uid() -> str:
    return uuid.uuid4().hex[:22]


# ---- Retell --------------------------------------------------------------------


def retell_signed(body: bytes, key: str = RETELL_KEY, *, timestamp_ms: int | None = None) -> dict[str, str]:
    """Signed by Retell's own SDK (retell.lib.webhook_auth, what Retell.verify checks)."""
    stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    return {"x-retell-signature": retell_signing["sign"](body.decode(), key, stamp)}


def retell_event(
    event: str,
    *,
    call_id: str,
    from_number: str = "+4915112345678",
    analysis: dict[str, Any] | None = None,
) -> bytes:
    """A call_* webhook as Retell sends it (docs.retellai.com, "Webhook": event + call object)."""
    now_ms = int(time.time() * 1000)
    call: dict[str, Any] = {
        "call_type": "phone_call",
        "from_number": from_number,
        "to_number": "+4930987654",
        "direction": "inbound",
        "call_id": call_id,
        "agent_id": "oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD",
        "call_status": "registered" if event == "call_started" else "ended",
        "metadata": {},
        "retell_llm_dynamic_variables": {},
        "start_timestamp": now_ms - 180_000,
    }
    if event != "call_started":
        call.update(
            end_timestamp=now_ms,
            disconnection_reason="user_hangup",
            transcript="Agent: Hello, how can I help?\nUser: I would like to book a haircut.",
        )
    if analysis is not None:
        call["call_analysis"] = {
            "call_summary": "The caller booked an appointment.",
            "in_voicemail": False,
            "user_sentiment": "Positive",
            "call_successful": True,
            "custom_analysis_data": analysis,
        }
    return json.dumps({"event": event, "call": call}).encode()


def process(*queues: str) -> None:
    """The relay's pass, then a burst worker on the queues (the layout's
    physical queues for logical webhooks and notifications: high, default)."""
    outbox_relay_drain()
    result = run_worker(*(queues or ("high", "default")), "--burst")
    assert result.returncode == 0, result.stderr[-3000:]
    # Notices queued by the processing go out on the next pass.
    outbox_relay_drain()
    result = run_worker(*(queues or ("high", "default")), "--burst")
    assert result.returncode == 0, result.stderr[-3000:]
