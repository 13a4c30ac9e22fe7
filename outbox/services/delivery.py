"""Delivery: a worker runs one handler of one message, once (the inbox), and
the message completes when every handler has. docs/outbox.md."""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from outbox.models import InboxEntry, OutboxMessage
from outbox.routes import Event, current_handler, handler_names, routes_for

log = logging.getLogger(__name__)

Status = OutboxMessage.Status


def _event(message: OutboxMessage) -> Event:
    return Event(
        id=message.pk,
        event_type=message.event_type,
        aggregate_type=message.aggregate_type,
        aggregate_id=message.aggregate_id,
        tenant_id=message.tenant_id,
        payload=message.payload,
        headers=message.headers,
        created_at=message.created_at,
    )


def outbox_deliver(*, message_id: int, handler: str, attempt: int | None = None, force: bool = False) -> bool:
    """Run one handler for one message, at most once (unless ``force``).

    The inbox row and the handler's effect commit together: a message
    delivered twice (relay crash, coroner, replay) finds the row and skips.
    The message row is locked for the duration, so the handlers of one
    message (and pruning) take turns. ``attempt`` is the dispatch this job
    belongs to: only that dispatch may mark the message processed, so a late
    job cannot complete a message that was replayed meanwhile.
    Returns False when skipped. A deleted message is a no-op success.
    """
    handler = current_handler(handler)  # a job queued before the handler moved
    names = handler_names(handler)
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            log.info("outbox message %s is gone; nothing to deliver", message_id)
            return False
        if force:
            InboxEntry.objects.filter(message_id=message_id, handler__in=names).delete()
        elif len(names) > 1 and InboxEntry.objects.filter(message_id=message_id, handler__in=names[1:]).exists():
            log.info("outbox message %s already handled by %s (as %s); skipped", message_id, handler, names[1:])
            _mark_processed_if_complete(message, attempt)
            return False
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO outbox_inboxentry (message_id, handler, processed_at) VALUES (%s, %s, now())"
                " ON CONFLICT (message_id, handler) DO NOTHING RETURNING id",
                [message_id, handler],
            )
            first_time = cursor.fetchone() is not None
        if first_time:
            import_string(handler)(_event(message))
        else:
            log.info("outbox message %s already handled by %s; skipped", message_id, handler)
        _mark_processed_if_complete(message, attempt)
    return first_time


def _mark_processed_if_complete(message: OutboxMessage, attempt: int | None) -> None:
    handlers = {r.handler for r in routes_for(message.event_type)}
    names = [name for handler in handlers for name in handler_names(handler)]
    entries = InboxEntry.objects.filter(message_id=message.pk, handler__in=names).values_list("handler", flat=True)
    if not handlers <= {current_handler(name) for name in entries}:
        return
    rows = OutboxMessage.objects.filter(pk=message.pk).exclude(status=Status.PROCESSED)
    if attempt is not None:
        # Only the current dispatch completes the message (not a stale job
        # from before a replay or redispatch put it back to pending).
        rows = rows.filter(attempts=attempt).exclude(status=Status.PENDING)
    rows.update(status=Status.PROCESSED, processed_at=timezone.now(), last_error="")


def outbox_mark_dead(*, message_id: int, error: str) -> bool:
    """A handler ran out of attempts: the message stops here until replayed."""
    return bool(
        OutboxMessage.objects.filter(pk=message_id)
        .exclude(status=Status.PROCESSED)
        .update(status=Status.DEAD, last_error=error[:10_000])
    )
