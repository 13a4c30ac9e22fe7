"""Sending: a lane claims an endpoint's due deliveries one at a time, makes
the HTTP attempt, and records it with the next step of the retry schedule.

Isolation. An endpoint is served by at most OUTBOUND_WEBHOOK_MAX_IN_FLIGHT
lanes at once (a PostgreSQL advisory lock per lane), and a lane gives its
worker back after LANE_BUDGET seconds or LANE_MAX attempts, going to the back
of the queue: an endpoint that times out every request holds at most that
many workers, one at a time, and every other endpoint's lane runs beside it.

Nothing lost. A claim moves the delivery's due time past the longest an
attempt can take (a lease) in the claiming statement; a sender that dies
mid-attempt leaves the delivery due again when the lease ends, and the
sweeper (every 10 s) wakes its endpoint. So a delivery may be attempted
twice (receivers de-duplicate on ``webhook-id``), never zero times.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from webhooks.outbound import client, signing
from webhooks.outbound.models import Delivery, DeliveryAttempt, OutboundMessage, WebhookEndpoint
from webhooks.outbound.services import endpoint_disable, live_secrets, retry_delay

LANE_BUDGET = 20.0  # seconds of sending before a lane requeues itself
LANE_MAX = 200  # attempts before a lane requeues itself
LEASE_MARGIN = 30.0  # seconds past the timeouts before a claimed delivery is due again

_CLAIM = """
UPDATE webhooks_delivery SET next_attempt_at = %s
WHERE id = (
    SELECT id FROM webhooks_delivery
    WHERE endpoint_id = %s AND status = 'pending' AND next_attempt_at <= %s
    ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id, message_id, attempts
"""


def lanes() -> range:
    return range(max(1, settings.OUTBOUND_WEBHOOK_MAX_IN_FLIGHT))


@contextmanager
def lane_lock(endpoint_id: int, lane: int) -> Iterator[bool]:
    """Hold lane ``lane`` of the endpoint (session advisory lock; released if
    the process dies, since its connection goes with it)."""
    key = f"outbound-webhook-lane:{endpoint_id}:{lane}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def has_due(endpoint_id: int) -> bool:
    return Delivery.objects.filter(
        endpoint_id=endpoint_id, status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).exists()


def _claim(endpoint_id: int) -> tuple[int, int, int] | None:
    now = timezone.now()
    lease = timedelta(
        seconds=settings.OUTBOUND_WEBHOOK_CONNECT_TIMEOUT + settings.OUTBOUND_WEBHOOK_READ_TIMEOUT + LEASE_MARGIN
    )
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, [now + lease, endpoint_id, now])
        row = cursor.fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else None


def drain(endpoint_id: int) -> bool:
    """Attempt the endpoint's due deliveries; True when the budget ran out with more due."""
    started, sent = time.monotonic(), 0
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
    secrets: dict[str, list[str]] = {}  # read once per drain: a rotation's old secret stays valid
    while endpoint is not None:
        claimed = _claim(endpoint_id)
        if claimed is None:
            return False
        delivery_id, message_id, attempts = claimed
        message = OutboundMessage.objects.only("msg_id", "payload").get(pk=message_id)
        at = timezone.now()
        if "live" not in secrets:
            secrets["live"] = live_secrets(endpoint_id, at)
        body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False)
        outcome = client.post(endpoint.url, body.encode(), signing.headers(message.msg_id, at, body, secrets["live"]))
        if not record(endpoint, delivery_id, attempts, at, outcome):
            # A failure may have disabled the endpoint: look again.
            endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
        sent += 1
        if sent >= LANE_MAX or time.monotonic() - started >= LANE_BUDGET:
            return has_due(endpoint_id)
    return False


@transaction.atomic
def record(endpoint: WebhookEndpoint, delivery_id: int, attempts: int, at: datetime, outcome: client.Outcome) -> bool:
    """Log the attempt and set what comes next; True when it succeeded."""
    from webhooks.outbound.jobs import wake

    DeliveryAttempt.objects.create(
        delivery_id=delivery_id,
        at=at,
        status_code=outcome.status,
        duration_ms=outcome.duration_ms,
        response=outcome.body[: client.RESPONSE_CAP],
        error=outcome.error[:500],
        succeeded=outcome.ok,
    )
    done = attempts + 1
    deliveries = Delivery.objects.filter(pk=delivery_id)
    if outcome.ok:
        deliveries.update(status=Delivery.Status.SUCCEEDED, attempts=done, last_attempt_at=at)
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(failing_since=None)
        return True
    delay = retry_delay(done)
    if delay is None:
        deliveries.update(status=Delivery.Status.FAILED, attempts=done, last_attempt_at=at)
    else:
        # The period starts at the failure (Svix), not at the attempt's start.
        deliveries.update(attempts=done, last_attempt_at=at, next_attempt_at=timezone.now() + timedelta(seconds=delay))
        transaction.on_commit(lambda: wake.dispatch_in(timedelta(seconds=delay), endpoint.pk))
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=at)
    if outcome.status == 410:
        endpoint_disable(endpoint.pk, reason="the endpoint answered 410 Gone", automatic=True)
    else:
        since = WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list("failing_since", flat=True).first()
        limit = timedelta(days=settings.OUTBOUND_WEBHOOK_DISABLE_AFTER_DAYS)
        if since is not None and at - since >= limit:
            endpoint_disable(
                endpoint.pk, reason=f"every attempt failed since {since:%Y-%m-%d %H:%M} UTC", automatic=True
            )
    return False
