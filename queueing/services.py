"""Writes on the failed-job ledger: record, retry, forget, flush."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from queueing.models import FailedJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailureRecord:
    job_id: str
    queue: str
    job_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    exception_class: str
    message: str
    traceback: str
    attempts: int
    worker: str
    tenant_id: int | None


def failed_job_record(*, record: FailureRecord) -> tuple[FailedJob, bool]:
    """Store a final failure once; a second report of the same job id changes nothing.

    Returns the row and whether this call created it (the unique job id makes
    that answer true for exactly one caller, however many race).
    """
    row, created = FailedJob.objects.get_or_create(
        job_id=record.job_id,
        defaults={
            "queue": record.queue,
            "job_name": record.job_name,
            "args": record.args,
            "kwargs": record.kwargs,
            "exception_class": record.exception_class,
            "message": record.message[:10_000],
            "traceback": record.traceback[:100_000],
            "attempts": record.attempts,
            "worker": record.worker,
            "tenant_id": record.tenant_id,
        },
    )
    if not created:
        log.info("failed job %s was already in the ledger", record.job_id)
    return row, created


RETRY_CHUNK = 1000


def failed_job_retry(*, ids: Iterable[int] | None = None, queue: str | None = None) -> list[str]:
    """Dispatch failed jobs again with fresh attempts, then delete their rows.

    ``ids=None`` means all (optionally of one ``queue``). Works in chunks of
    RETRY_CHUNK rows, each its own transaction: the rows are locked (rows
    another operator is retrying right now are skipped), their jobs are
    enqueued *while the lock is held*, and only then are the rows deleted.
    If Redis refuses, the transaction rolls back and the rows stay; if the
    commit fails after the enqueue, a later retry dispatches those jobs again
    (at-least-once, like every delivery here). Returns the new job ids.
    """
    wanted = None if ids is None else sorted(set(ids))
    new_ids: list[str] = []
    after = 0
    while True:
        with transaction.atomic():
            rows = FailedJob.objects.select_for_update(skip_locked=True).filter(pk__gt=after).order_by("id")
            if wanted is not None:
                rows = rows.filter(pk__in=wanted)
            if queue is not None:
                rows = rows.filter(queue=queue)
            chunk = list(rows[:RETRY_CHUNK])
            if not chunk:
                return new_ids
            new_ids += _redispatch_now(chunk)
            FailedJob.objects.filter(pk__in=[row.pk for row in chunk]).delete()
        after = chunk[-1].pk


def _redispatch_now(rows: list[FailedJob]) -> list[str]:
    """Enqueue the rows' jobs now: declared jobs through their definition
    (grouped, in bulk), others (plain RQ functions) as they were."""
    from queueing.definitions import definition_for
    from queueing.dispatch import enqueue_now_rollback_unsafe, get_queue
    from queueing.topology import physical_queue

    grouped: dict[str, list[FailedJob]] = {}
    new_ids = []
    for row in rows:
        if definition_for(row.job_name) is not None:
            grouped.setdefault(row.job_name, []).append(row)
        else:
            # Its queue by name; after a layout change that dropped it, its route.
            job = get_queue(physical_queue(row.queue)).enqueue_call(
                row.job_name, args=list(row.args), kwargs=dict(row.kwargs)
            )
            new_ids.append(job.id)
    for name, group in grouped.items():
        definition = definition_for(name)
        assert definition is not None
        calls = [(list(row.args), dict(row.kwargs)) for row in group]
        new_ids += [d.job_id for d in enqueue_now_rollback_unsafe(definition, calls)]
    return new_ids


@transaction.atomic
def failed_job_forget(*, ids: Iterable[int]) -> int:
    deleted, _ = FailedJob.objects.filter(pk__in=list(ids)).delete()
    return deleted


@transaction.atomic
def failed_job_forget_by_job_ids(job_ids: Iterable[str]) -> int:
    """Drop the ledger rows of these RQ job ids (django-rq requeued or deleted them)."""
    deleted, _ = FailedJob.objects.filter(job_id__in=list(job_ids)).delete()
    return deleted


@transaction.atomic
def failed_job_flush(*, older_than_hours: int | None = None, queue: str | None = None) -> int:
    rows = FailedJob.objects.all()
    if queue is not None:
        rows = rows.filter(queue=queue)
    if older_than_hours is not None:
        rows = rows.filter(failed_at__lt=timezone.now() - timedelta(hours=older_than_hours))
    deleted, _ = rows.delete()
    return deleted


# ---------------------------------------------------------------- metrics snapshots

SNAPSHOT_PERIOD = 5  # minutes


def metrics_snapshot(*, conn: Any, at: float | None = None, catch_up: int = 3) -> int:
    """Store the last ``catch_up`` complete 5-minute periods from the Redis
    counters into MetricSnapshot (an upsert: running twice, or catching up
    after a missed run, writes the same rows), then trim history older than
    QUEUE_METRICS_RETENTION_DAYS. Returns the number of rows written."""
    from django.conf import settings

    from queueing import metrics, selectors
    from queueing.models import MetricSnapshot

    minute = metrics.current_minute(at)
    last_start = minute - minute % SNAPSHOT_PERIOD - SNAPSHOT_PERIOD  # newest complete period
    starts = [last_start - i * SNAPSHOT_PERIOD for i in range(catch_up)]
    raw = metrics.read_minutes(conn, range(starts[-1], last_start + SNAPSHOT_PERIOD))
    depths = {status.name: status.size for status in selectors.queue_statuses(conn)}
    rows = []
    for start in starts:
        period = metrics.fold(raw[m] for m in range(start, start + SNAPSHOT_PERIOD))
        names = set(period) | {("q", name) for name in depths}  # idle queues get a row too
        for scope, name in names:
            totals = period.get((scope, name), metrics.Totals())
            rows.append(
                MetricSnapshot(
                    period_start=datetime.fromtimestamp(start * 60, UTC),
                    scope=metrics.SCOPES[scope],
                    name=name,
                    jobs=totals.jobs,
                    failed=totals.failed,
                    runtime_avg_ms=totals.runtime_avg_ms,
                    runtime_p50_ms=totals.runtime_p(0.5),
                    runtime_p95_ms=totals.runtime_p(0.95),
                    wait_avg_ms=totals.wait_avg_ms,
                    wait_p95_ms=totals.wait_p(0.95),
                    depth=depths.get(name) if scope == "q" and start == last_start else None,
                )
            )
    update = ["jobs", "failed", "runtime_avg_ms", "runtime_p50_ms", "runtime_p95_ms", "wait_avg_ms", "wait_p95_ms"]
    with transaction.atomic():
        MetricSnapshot.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["scope", "name", "period_start"],
            update_fields=update,
            batch_size=500,
        )
        cutoff = timezone.now() - timedelta(days=settings.QUEUE_METRICS_RETENTION_DAYS)
        trimmed, _ = MetricSnapshot.objects.filter(period_start__lt=cutoff).delete()
    if trimmed:
        log.info("queue_snapshot: trimmed %d snapshot rows older than %s", trimmed, cutoff)
    return len(rows)


# ---------------------------------------------------------------- audit trail


def failed_jobs_target(ids: list[int]) -> str:
    """The audit trail's name for a set of failed-job ledger rows."""
    return f"failed_job:{ids[0]}" if len(ids) == 1 else f"failed_jobs:{','.join(map(str, ids))}"


def audit_record(
    *,
    user: Any,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    username: str = "",
) -> None:
    """One row per operator action that changed something (dashboard, admin,
    management commands). ``username`` names a user who is not a Django
    account (a command's OS user and host)."""
    from queueing.models import AuditEntry

    AuditEntry.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=(username or getattr(user, "get_username", lambda: "")() or "system")[:150],
        action=action,
        target=target[:255],
        detail=detail or {},
        ip=ip or None,
    )
    log.info("audit: %s %s %s %s", username or getattr(user, "username", "system"), action, target, detail or "")
