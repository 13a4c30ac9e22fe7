"""Intake: store the event once and, when some handler acts on its type, the
outbox message that will process it — one statement, one round trip."""

from __future__ import annotations

import json
import logging
from typing import Any, NamedTuple

from django.db import InterfaceError, OperationalError, connection

from outbox.services import outbox_insert_and_publish
from webhooks.models import WebhookEvent
from webhooks.providers import handler_for

log = logging.getLogger(__name__)

# The outbox event that processes one stored webhook event (webhooks/apps.py routes it).
# Named when only payments came in, and kept: relays and workers of an earlier
# release, still running during a rolling deploy, route it.
PROCESS_EVENT = "payment.webhook_received"
AGGREGATE = "webhook_event"


class Received(NamedTuple):
    """What intake stored (or found): the hot path builds no model instance."""

    pk: int
    status: str
    created: bool


def webhook_receive(
    *,
    provider: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    account: str = "",
    process_event: str = PROCESS_EVENT,
) -> Received:
    """Store the event once; if we act on its type, publish the work in the same transaction.

    ``account`` is the per-account endpoint's account (a tenant's id), "" for
    the platform's own; ``process_event`` the outbox event its work goes as.

    A duplicate (the provider retrying) comes back with ``created=False`` and
    changes nothing.

    Django's per-request connection health check (CONN_HEALTH_CHECKS) costs
    a ``SELECT 1`` round trip — a third of this endpoint's time. Intake skips
    it and instead retries once on a dead connection (say, PostgreSQL was
    restarted since the last request). The retry is safe because the insert
    is idempotent: if the first attempt did commit before the connection
    dropped, the second finds the event stored and answers "duplicate".
    """
    params = (provider, account, event_id, event_type, payload, process_event)
    if connection.in_atomic_block:  # a caller's transaction: no reconnecting under it
        return _store(*params)
    connection.health_check_done = True  # type: ignore[attr-defined]  # django-stubs lacks it (Django ≥ 4.1)
    try:
        return _store(*params)
    except (OperationalError, InterfaceError) as exc:
        log.warning("webhook %s %s: database connection lost (%s); reconnecting once", provider, event_id, exc)
        connection.close()
        return _store(*params)


def _store(
    provider: str, account: str, event_id: str, event_type: str, payload: dict[str, Any], process_event: str
) -> Received:
    known = handler_for(provider, event_type) is not None
    status = WebhookEvent.Status.RECEIVED if known else WebhookEvent.Status.IGNORED
    insert = (
        "INSERT INTO orders_webhookevent"  # WebhookEvent's table (it kept its name when the model moved here)
        " (provider, account, event_id, type, payload, received_at, status, attempts, last_error)"
        " VALUES (%s, %s, %s, %s, %s::jsonb, now(), %s, 0, '')"
        " ON CONFLICT (provider, account, event_id) DO NOTHING"
        " RETURNING id, status"
    )
    params = [provider, account, event_id, event_type, json.dumps(payload), status]
    # One statement, one round trip: event row + (known types) outbox message + NOTIFY.
    if known:
        rows = outbox_insert_and_publish(
            insert_sql=insert,
            params=params,
            event_type=process_event,
            aggregate_type=AGGREGATE,
            payload_key="webhook_event_id",
        )
    else:
        with connection.cursor() as cursor:
            cursor.execute(insert, params)
            rows = cursor.fetchall()
    if not rows:  # the provider retrying: already stored
        pk, stored_status = (
            WebhookEvent.objects.filter(provider=provider, account=account, event_id=event_id)
            .values_list("pk", "status")
            .get()
        )
        return Received(pk=pk, status=stored_status, created=False)
    return Received(pk=rows[0][0], status=rows[0][1], created=True)
