"""What every inbound webhook goes through before its provider looks at it:
the body read within a size limit, strict JSON, and the id and type checked
against what the table can hold. Each failure is the sender's (a 400 or a 413)
and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

MAX_BODY = 1024 * 1024
# An oversized body is read and dropped up to this size before the 413, as
# nginx's lingering close does: a server that answers and hangs up while the
# sender is still writing makes the sender see a connection reset, not the 413.
DRAIN_LIMIT = 8 * MAX_BODY
DRAIN_CHUNK = 64 * 1024
TOLERANCE = 300  # seconds either side of our clock a signature's timestamp may be, as Standard Webhooks
# The model's column sizes: a longer id or type is the sender's error (400), not a 503.
MAX_EVENT_ID = 255
MAX_EVENT_TYPE = 100


class InvalidWebhook(ValueError):
    """Signed, but not something we can act on: a 400, nothing stored (or,
    found while processing a stored event, the event is failed with this reason)."""


def read_body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is over MAX_BODY (a 413).

    A chunked request has no Content-Length. Under WSGI Django then reads its
    body as empty (every signature failing, a misleading 400 — and a 2 MB
    chunked body not a 413), so read the server's decoded ``wsgi.input``
    ourselves. Under ASGI there is no ``wsgi.input``: the server has already
    de-chunked the body and Django's own stream holds all of it. Either way
    keep never more than MAX_BODY + 1 bytes (the rest of an oversized body is
    read and dropped, up to DRAIN_LIMIT).
    """
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > MAX_BODY:
        if int(length) <= DRAIN_LIMIT:
            _drain(request.read, int(length))
        return None
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not length:
        wsgi_input = request.META.get("wsgi.input")
        read = wsgi_input.read if wsgi_input is not None else request.read
        raw = read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            _drain(read, DRAIN_LIMIT - len(raw))
            return None
        return raw
    raw = request.body
    return None if len(raw) > MAX_BODY else raw


def _drain(read: Callable[[int], bytes], budget: int) -> None:
    while budget > 0:
        chunk = read(min(DRAIN_CHUNK, budget))
        if not chunk:
            return
        budget -= len(chunk)


def _reject_constant(name: str) -> Any:
    raise InvalidWebhook(f"JSON constant {name} is not allowed")


def strict_json(raw: bytes) -> Any:
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


def check_identity(event_id: str, event_type: str) -> None:
    """The id and type fit their columns and are text PostgreSQL can store."""
    if not event_id or len(event_id) > MAX_EVENT_ID:
        raise InvalidWebhook(f"event id must be 1 to {MAX_EVENT_ID} characters, got {len(event_id)}")
    if len(event_type) > MAX_EVENT_TYPE:
        raise InvalidWebhook(f"event type must be at most {MAX_EVENT_TYPE} characters, got {len(event_type)}")
    for name, value in (("id", event_id), ("type", event_type)):
        _storable_text(name, value)


def _storable_text(name: str, value: str) -> None:
    """The id and type go to text columns as query parameters (the payload goes
    as JSON text, where jsonb's own refusal is a DataError, handled by the view).
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
