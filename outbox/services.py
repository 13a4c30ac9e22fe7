"""Writes on the outbox: publish, relay, deliver, coroner, replay, prune."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone
from django.utils.module_loading import import_string

from outbox.models import InboxEntry, OutboxMessage
from outbox.routes import Event, routes_for

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox_messages"
Status = OutboxMessage.Status


class OutsideTransaction(RuntimeError):
    pass


def _key(value: object) -> int | None:
    if value is None:
        return None
    pk = getattr(value, "pk", value)
    return int(pk) if isinstance(pk, int) else None


def outbox_publish(
    *,
    event_type: str,
    payload: dict[str, Any],
    aggregate: tuple[str, object],
    tenant: object | None = None,
    headers: dict[str, Any] | None = None,
    available_at: datetime | None = None,
) -> OutboxMessage:
    """Write an event in the caller's transaction; it leaves only if that commits.

    ``aggregate`` is ``("order", order.pk)``; ``tenant`` a Tenant or its id.
    """
    if not connection.in_atomic_block:
        raise OutsideTransaction(
            f"outbox.publish({event_type!r}) outside transaction.atomic(): the message must be "
            "written in the same transaction as the change it announces, or one can exist without the other."
        )
    aggregate_type, aggregate_id = aggregate
    message = OutboxMessage.objects.create(
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(getattr(aggregate_id, "pk", aggregate_id)),
        tenant_id=_key(tenant),
        payload=payload,  # JSONField refuses what JSON cannot carry
        headers=headers or {},
        **({"available_at": available_at} if available_at else {}),
    )
    # Delivered to the listening relay when (and only if) this transaction
    # commits: the relay wakes within milliseconds instead of polling.
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return message


# --------------------------------------------------------------------------- relay


def _job_ids(message_id: int, attempt: int, handlers: int) -> list[str]:
    # Unique per dispatch (no colons: RQ composite keys split on them).
    return [f"outbox-{message_id}-{attempt}-{n}" for n in range(handlers)]


def outbox_relay_pass(*, batch_size: int = 500, crash_after_enqueue: bool = False) -> int:
    """Claim up to ``batch_size`` due messages, enqueue their handler jobs in
    one Redis round trip, mark them dispatched, commit. Returns how many.

    SKIP LOCKED lets any number of relays run: each claims rows the others
    have not. A crash after the enqueue rolls the marking back, so the next
    pass enqueues again; the inbox makes the second delivery a no-op.
    """
    from outbox.jobs import deliver
    from queueing.dispatch import enqueue_batch

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
            ids = _job_ids(message_id, attempts + 1, len(routes))
            for r, job_id in zip(routes, ids, strict=True):
                if r.queue not in on_queue:
                    on_queue[r.queue] = deliver.on_queue(r.queue)
                items.append((on_queue[r.queue], (message_id, r.handler, attempts + 1), job_id))
        enqueue_batch(items)
        if crash_after_enqueue:  # fault injection for the crash tests (--crash-after-enqueue)
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
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


# --------------------------------------------------------------------------- delivery


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
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            log.info("outbox message %s is gone; nothing to deliver", message_id)
            return False
        if force:
            InboxEntry.objects.filter(message_id=message_id, handler=handler).delete()
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


def _mark_processed_if_complete(message: OutboxMessage, attempt: int | None) -> None:
    handlers = [r.handler for r in routes_for(message.event_type)]
    done = InboxEntry.objects.filter(message_id=message.pk, handler__in=handlers).count()
    if done < len(handlers):
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


# --------------------------------------------------------------------------- coroner


@dataclass
class StuckReport:
    pending: list[OutboxMessage] = field(default_factory=list)
    lost: list[OutboxMessage] = field(default_factory=list)
    dead: list[OutboxMessage] = field(default_factory=list)
    redispatched: int = 0
    relayed: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.pending or self.lost or self.dead)


def outbox_find_stuck(*, pending_after: int = 60, dispatched_after: int = 300, limit: int = 1000) -> StuckReport:
    """Pending too long (relay down), dispatched but whose jobs are gone from
    Redis (flushed, lost), and dead messages."""
    from queueing.dispatch import get_queue

    now = timezone.now()
    report = StuckReport()
    report.pending = list(
        OutboxMessage.objects.filter(
            status=Status.PENDING, available_at__lt=now - timedelta(seconds=pending_after)
        ).order_by("available_at", "id")[:limit]
    )
    candidates = list(
        OutboxMessage.objects.filter(
            status=Status.DISPATCHED, dispatched_at__lt=now - timedelta(seconds=dispatched_after)
        ).order_by("dispatched_at")[:limit]
    )
    if candidates:
        conn = get_queue("default").connection
        with conn.pipeline(transaction=False) as pipe:
            for message in candidates:
                handlers = max(1, len(routes_for(message.event_type)))
                for job_id in _job_ids(message.pk, message.attempts, handlers):
                    pipe.hget(f"rq:job:{job_id}", "status")
            statuses = pipe.execute()
        index = 0
        for message in candidates:
            count = max(1, len(routes_for(message.event_type)))
            # Slow is not lost: a job still queued, scheduled (retrying) or
            # running is left alone. Gone, finished or failed without the
            # message completing means its delivery was lost.
            alive = [s for s in statuses[index : index + count] if s in _ALIVE]
            if not alive:
                report.lost.append(message)
            index += count
    report.dead = list(OutboxMessage.objects.filter(status=Status.DEAD).order_by("id")[:limit])
    return report


def outbox_coroner_run(*, pending_after: int = 60, dispatched_after: int = 300, redispatch: bool) -> StuckReport:
    """The coroner's pass (command and scheduled job): find stuck messages, log
    an error when there are any, and with ``redispatch`` send the lost ones
    again and drain the long-pending ones."""
    report = outbox_find_stuck(pending_after=pending_after, dispatched_after=dispatched_after)
    if report.anything:
        log.error(
            "outbox coroner: %d pending, %d lost, %d dead", len(report.pending), len(report.lost), len(report.dead)
        )
    if redispatch and (report.pending or report.lost):
        report.redispatched = outbox_redispatch_lost(seen=report.lost)
        report.relayed = outbox_relay_drain()
    return report


_ALIVE = {b"queued", b"scheduled", b"started", b"deferred"}


def outbox_redispatch(*, ids: Sequence[int]) -> int:
    """Send dispatched or dead messages again (an operator's choice): back to
    pending; the relay takes them. Pending ones are the relay's already."""
    with transaction.atomic():
        count = OutboxMessage.objects.filter(
            pk__in=list(ids), status__in=[Status.DISPATCHED, Status.DEAD, Status.SKIPPED]
        ).update(status=Status.PENDING)
        _notify()
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
        _notify()
    return count


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")


# --------------------------------------------------------------------------- replay and prune


def outbox_replay_queryset(
    *,
    from_id: int | None = None,
    to_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    event: str | None = None,
    tenant: int | None = None,
) -> Any:
    rows = OutboxMessage.objects.all()
    if from_id is not None:
        rows = rows.filter(pk__gte=from_id)
    if to_id is not None:
        rows = rows.filter(pk__lte=to_id)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    if event is not None:  # "" selects nothing, never everything
        rows = rows.filter(event_type=event)
    if tenant is not None:
        rows = rows.filter(tenant_id=tenant)
    return rows.order_by("id")


def outbox_replay(*, ids: Sequence[int], force_handlers: bool = False) -> int:
    """Deliver messages again, processed ones included. Without
    ``force_handlers`` handlers that already ran skip them (the inbox says so);
    with it their inbox rows are dropped and they run again."""
    ids = list(ids)
    with transaction.atomic():
        if force_handlers:
            InboxEntry.objects.filter(message_id__in=ids).delete()
        count = OutboxMessage.objects.filter(pk__in=ids).update(
            status=Status.PENDING, available_at=timezone.now(), processed_at=None, last_error=""
        )
        _notify()
    return count


def outbox_prune(
    *,
    older_than: timedelta | None = None,
    before: datetime | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
    budget: float | None = None,
) -> int:
    """Delete processed messages (and their inbox rows) processed before
    ``before`` (or ``older_than`` ago), ``batch_size`` at a time so no lock is
    held for long.

    With ``budget`` (seconds) it stops after the batch that crosses it, so a
    job can prune in bounded slices with one fixed cutoff (see
    ``outbox.jobs.prune``); ``None`` runs to the end."""
    if (older_than is None) == (before is None):
        raise ValueError("outbox_prune: give exactly one of older_than and before")
    cutoff = before if before is not None else timezone.now() - (older_than or timedelta())
    rows = OutboxMessage.objects.filter(status=Status.PROCESSED, processed_at__lt=cutoff)
    if dry_run:
        return rows.count()
    total = 0
    stop_at = time.monotonic() + budget if budget is not None else None
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # Lock, re-check and delete in one statement: a row replayed or
            # being delivered right now is skipped, never deleted under it.
            cursor.execute(
                "WITH doomed AS (SELECT id FROM outbox_outboxmessage WHERE status = 'processed'"
                " AND processed_at < %s ORDER BY processed_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " DELETE FROM outbox_outboxmessage m USING doomed WHERE m.id = doomed.id RETURNING m.id",
                [cutoff, batch_size],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return total
            InboxEntry.objects.filter(message_id__in=ids).delete()
        total += len(ids)
        if stop_at is not None and time.monotonic() >= stop_at:
            return total


def outbox_prune_left(*, before: datetime) -> bool:
    """Whether ``outbox_prune(before=…)`` still has rows to delete."""
    return OutboxMessage.objects.filter(status=Status.PROCESSED, processed_at__lt=before).exists()


def outbox_counts(*, stuck_after: int = 300) -> dict[str, int]:
    from django.db.models import Count

    now = timezone.now()
    counts = dict(
        OutboxMessage.objects.exclude(status=Status.PROCESSED)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts["stuck"] = OutboxMessage.objects.filter(
        Q(status=Status.PENDING, available_at__lt=now - timedelta(seconds=60))
        | Q(status=Status.DISPATCHED, dispatched_at__lt=now - timedelta(seconds=stuck_after))
    ).count()
    return {k: int(counts.get(k, 0)) for k in ("pending", "dispatched", "stuck", "dead")}


def outbox_publish_many(
    *, event_type: str, events: Sequence[tuple[tuple[str, object], int | None, dict[str, Any]]]
) -> int:
    """``publish`` for set-based writers: ``(aggregate, tenant_id, payload)``
    rows in one INSERT and one NOTIFY, still in the caller's transaction."""
    if not connection.in_atomic_block:
        raise OutsideTransaction(f"outbox.publish_many({event_type!r}) outside transaction.atomic()")
    now = timezone.now()
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                event_type=event_type,
                aggregate_type=aggregate[0],
                aggregate_id=str(aggregate[1]),
                tenant_id=tenant_id,
                payload=payload,
                created_at=now,
                available_at=now,
            )
            for aggregate, tenant_id, payload in events
        ],
        batch_size=1000,
    )
    if events:
        _notify()
    return len(events)


def outbox_insert_and_publish(
    *, insert_sql: str, params: Sequence[Any], event_type: str, aggregate_type: str, payload_key: str
) -> list[tuple[Any, ...]]:
    """One statement: run ``insert_sql`` (an INSERT … RETURNING id, …) and publish
    an outbox message ``{payload_key: id}`` for each row it returns, with the
    NOTIFY — atomic on its own, one round trip. For hot intake paths (webhooks)
    where BEGIN / INSERT / INSERT / NOTIFY / COMMIT would be five.

    Returns the rows of ``insert_sql`` (empty when it inserted nothing).
    """
    sql = f"""
        WITH inserted AS ({insert_sql}),
        message AS (
            INSERT INTO outbox_outboxmessage (event_type, aggregate_type, aggregate_id, payload, headers,
                                              created_at, available_at, status, attempts, last_error, job_id)
            SELECT %s, %s, inserted.id::text, jsonb_build_object(%s, inserted.id), '{{}}'::jsonb,
                   now(), now(), 'pending', 0, '', ''
              FROM inserted
            RETURNING id
        ),
        notified AS (SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM message)
        SELECT inserted.*, (SELECT count(*) FROM notified) FROM inserted
    """  # noqa: S608 - insert_sql is the caller's constant SQL, never user input
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, event_type, aggregate_type, payload_key])
        return [row[:-1] for row in cursor.fetchall()]
