"""Cal.com (a tenant's calendar): ``X-Cal-Signature-256`` is the hex
HMAC-SHA256 of the raw body keyed by the secret the tenant set on its Cal.com
webhook; the body is ``{"triggerEvent", "createdAt", "payload": {…}}``.

Cal.com sends no event id. A redelivery repeats the body byte for byte, so
the id is the trigger, the booking's uid and the body's SHA-256: a retry is a
duplicate, a later change to the same booking is a new event.
Cal.com signs without a timestamp, so there is no replay window to check: a
replayed body is a duplicate while its event is kept, and applying a booking
change again is a no-op (appointments/services/calendar.py)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhooks.providers.base import Account, Provider, Verified
from webhooks.transport import InvalidWebhook, strict_json

NAME = "calcom"
SIGNATURE_HEADER = "X-Cal-Signature-256"


def signature(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], raw: bytes, account: Account | None = None) -> Verified:
    if account is None or not account.secrets:
        raise InvalidWebhook("no calendar webhook secret is configured for this account")
    given = headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not given:
        raise InvalidWebhook(f"missing {SIGNATURE_HEADER} header")
    # Every secret is tried (no early exit on the first), so timing says nothing about which matched.
    matches = [hmac.compare_digest(signature(secret, raw), given) for secret in account.secrets]
    if not any(matches):
        raise InvalidWebhook(f"signature verification failed: {SIGNATURE_HEADER} matches no secret of this account")
    body = strict_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("triggerEvent"), str):
        raise InvalidWebhook("expected a Cal.com webhook object with a string 'triggerEvent'")
    payload = body.get("payload")
    uid = payload.get("uid") if isinstance(payload, dict) else None
    uid = uid if isinstance(uid, str) else ""
    event_id = f"{body['triggerEvent']}:{uid[:100]}:{hashlib.sha256(raw).hexdigest()}"
    return Verified(event_id, body["triggerEvent"], body)


PROVIDER = Provider(NAME, verify, process_event="calendar.webhook_received", per_account=True)


# ---- the booking in a BOOKING_* payload --------------------------------------

CREATED, CANCELLED, RESCHEDULED = "BOOKING_CREATED", "BOOKING_CANCELLED", "BOOKING_RESCHEDULED"


@dataclass(frozen=True)
class Person:
    external_id: str
    name: str
    email: str
    phone: str = ""


@dataclass(frozen=True)
class Booking:
    """What a BOOKING_* payload says about the booking (times in UTC)."""

    uid: str
    previous_uid: str  # a reschedule's original booking ("rescheduleUid"); "" otherwise
    starts_at: datetime
    ends_at: datetime
    event_type_id: str
    event_type_name: str
    length_minutes: int
    organizer: Person
    attendee: Person
    cancellation_reason: str


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _instant(payload: dict[str, Any], key: str) -> datetime:
    raw = payload.get(key)
    if not isinstance(raw, str):
        raise InvalidWebhook(f"payload.{key} must be an ISO 8601 time")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidWebhook(f"payload.{key} is not an ISO 8601 time: {raw[:40]!r}") from None
    if value.tzinfo is None:
        raise InvalidWebhook(f"payload.{key} has no UTC offset: {raw[:40]!r}")
    return value.astimezone(UTC)


def _phone(payload: dict[str, Any], attendee: dict[str, Any]) -> str:
    # Cal.com puts a phone booking field's answer in "responses" (attendeePhoneNumber
    # on recent versions), and some attendees carry phoneNumber themselves.
    responses = payload.get("responses")
    answer = responses.get("attendeePhoneNumber") if isinstance(responses, dict) else None
    if isinstance(answer, dict):
        answer = answer.get("value")
    return answer if isinstance(answer, str) else _text(attendee, "phoneNumber")


def parse_booking(trigger: str, body: dict[str, Any]) -> Booking:
    """The booking of a BOOKING_* event; InvalidWebhook names what is missing."""
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidWebhook(f"{trigger}: 'payload' must be an object")
    uid = _text(payload, "uid")
    if not uid:
        raise InvalidWebhook(f"{trigger}: payload.uid is missing")
    previous = _text(payload, "rescheduleUid")
    if trigger == RESCHEDULED and not previous:
        raise InvalidWebhook(f"{trigger}: payload.rescheduleUid (the original booking) is missing")
    starts_at, ends_at = _instant(payload, "startTime"), _instant(payload, "endTime")
    if ends_at <= starts_at:
        raise InvalidWebhook(f"{trigger}: payload.endTime is not after payload.startTime")
    organizer = payload.get("organizer")
    if not isinstance(organizer, dict) or not (_text(organizer, "id") or _text(organizer, "email")):
        raise InvalidWebhook(f"{trigger}: payload.organizer needs an id or an email")
    attendees = payload.get("attendees")
    if not isinstance(attendees, list) or not attendees or not isinstance(attendees[0], dict):
        raise InvalidWebhook(f"{trigger}: payload.attendees must list the booker")
    booker = attendees[0]
    if not (_text(booker, "name") or _text(booker, "email")):
        raise InvalidWebhook(f"{trigger}: the booker (payload.attendees[0]) has neither name nor email")
    length = payload.get("length")
    return Booking(
        uid=uid,
        previous_uid=previous,
        starts_at=starts_at,
        ends_at=ends_at,
        event_type_id=_text(payload, "eventTypeId"),
        event_type_name=_text(payload, "eventTitle") or _text(payload, "type") or _text(payload, "title"),
        length_minutes=length if isinstance(length, int) and length > 0 else 0,
        organizer=Person(_text(organizer, "id"), _text(organizer, "name"), _text(organizer, "email")),
        attendee=Person("", _text(booker, "name"), _text(booker, "email"), _phone(payload, booker)),
        cancellation_reason=_text(payload, "cancellationReason"),
    )
