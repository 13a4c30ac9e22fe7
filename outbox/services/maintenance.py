"""Maintenance: the coroner (repair stuck messages), replay and prune. docs/outbox.md."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from outbox.models import InboxEntry, OutboxMessage
from outbox.selectors import StuckReport, outbox_find_stuck
from outbox.services.dispatching import outbox_redispatch_lost, outbox_relay_drain
from outbox.services.publishing import notify

log = logging.getLogger(__name__)

Status = OutboxMessage.Status


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
        notify()
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
