"""Reads of the outbox: stuck messages, replay selections, counts. docs/outbox.md."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from rq.job import Job

from outbox.job_ids import carrier_job_ids
from outbox.models import OutboxMessage
from outbox.routes import routes_for

log = logging.getLogger(__name__)

Status = OutboxMessage.Status


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


ALIVE = {b"queued", b"scheduled", b"started", b"deferred"}


def outbox_find_stuck(*, pending_after: int = 60, dispatched_after: int = 300, limit: int = 1000) -> StuckReport:
    """Pending too long (relay down), dispatched but whose jobs are gone from
    Redis (flushed, lost), and dead messages."""
    from queueing.dispatch import redis_connection

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
        conn = redis_connection()
        # Per message, every job that may carry its dispatch: its own per
        # handler (the relay's, or a retry after it failed in a batch) and
        # the batch it went out in, if any.
        carriers = [
            carrier_job_ids(message.pk, message.attempts, max(1, len(routes_for(message.event_type))), message.job_id)
            for message in candidates
        ]
        with conn.pipeline(transaction=False) as pipe:
            for ids in carriers:
                for job_id in ids:
                    pipe.hget(Job.key_for(job_id), "status")
            statuses = pipe.execute()
        index = 0
        for message, ids in zip(candidates, carriers, strict=True):
            # Slow is not lost: a job still queued, scheduled (retrying) or
            # running is left alone. Gone, finished or failed without the
            # message completing means its delivery was lost.
            alive = [s for s in statuses[index : index + len(ids)] if s in ALIVE]
            if not alive:
                report.lost.append(message)
            index += len(ids)
    report.dead = list(OutboxMessage.objects.filter(status=Status.DEAD).order_by("id")[:limit])
    return report


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
