"""Dispatching: the relay moves due messages onto the queues (claim, one
Redis round trip, mark, commit); redispatch sends messages again. docs/outbox.md."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from outbox.job_ids import delivery_job_ids
from outbox.models import OutboxMessage
from outbox.routes import routes_for
from outbox.services.publishing import notify

log = logging.getLogger(__name__)

Status = OutboxMessage.Status


def outbox_relay_pass(*, batch_size: int = 500) -> int:
    """Claim up to ``batch_size`` due messages, enqueue their handler jobs in
    one Redis round trip, mark them dispatched, commit. Returns how many.

    SKIP LOCKED lets any number of relays run: each claims rows the others
    have not. A crash after the enqueue rolls the marking back, so the next
    pass enqueues again; the inbox makes the second delivery a no-op.
    """
    from outbox.jobs import deliver
    from queueing.dispatch import enqueue_batch_rollback_unsafe

    with transaction.atomic():
        rows = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, available_at__lte=timezone.now())
            .order_by("available_at", "id")
            .values_list("id", "event_type", "attempts")[:batch_size]
        )
        if not rows:
            return 0
        items: list[tuple[Any, tuple[int, str, int], str]] = []
        routed, unrouted = [], []
        on_queue: dict[str, Any] = {}
        for message_id, event_type, attempts in rows:
            routes = routes_for(event_type)
            if not routes:
                unrouted.append(message_id)
                continue
            routed.append(message_id)
            ids = delivery_job_ids(message_id, attempts + 1, len(routes))
            for r, job_id in zip(routes, ids, strict=True):
                if r.queue not in on_queue:
                    on_queue[r.queue] = deliver.on_queue(r.queue)
                items.append((on_queue[r.queue], (message_id, r.handler, attempts + 1), job_id))
        enqueue_batch_rollback_unsafe(items)
        # (chaos/faults.py kills a relay right here, around enqueue_batch_rollback_unsafe, to prove the rollback.)
        now = timezone.now()
        if routed:
            OutboxMessage.objects.filter(pk__in=routed).update(
                status=Status.DISPATCHED,
                dispatched_at=now,
                attempts=F("attempts") + 1,
                job_id=Concat(
                    Value("outbox-"),
                    Cast("id", CharField()),
                    Value("-"),
                    Cast(F("attempts") + 1, CharField()),
                    Value("-0"),
                ),
            )
        if unrouted:
            # Nobody listens (yet). Not "processed": a relay running older code
            # during a deploy must not swallow events; replay delivers them later.
            OutboxMessage.objects.filter(pk__in=unrouted).update(status=Status.SKIPPED)
    return len(rows)


def outbox_relay_drain(*, batch_size: int = 500) -> int:
    """Passes until a pass finds less than a full batch."""
    total = 0
    while True:
        moved = outbox_relay_pass(batch_size=batch_size)
        total += moved
        if moved < batch_size:
            return total


def outbox_redispatch(*, ids: Sequence[int]) -> int:
    """Send dispatched or dead messages again (an operator's choice): back to
    pending; the relay takes them. Pending ones are the relay's already."""
    with transaction.atomic():
        count = OutboxMessage.objects.filter(
            pk__in=list(ids), status__in=[Status.DISPATCHED, Status.DEAD, Status.SKIPPED]
        ).update(status=Status.PENDING)
        notify()
    return count


def outbox_redispatch_lost(*, seen: Sequence[OutboxMessage]) -> int:
    """The coroner's repair: only rows still exactly as it saw them (same
    dispatch, still dispatched) go back to pending; anything that moved on
    meanwhile — delivered, died, redispatched — is left alone."""
    count = 0
    with transaction.atomic():
        for message in seen:
            count += OutboxMessage.objects.filter(
                pk=message.pk, status=Status.DISPATCHED, attempts=message.attempts
            ).update(status=Status.PENDING)
        notify()
    return count
