"""Writes on the failed-job ledger: record, retry, forget, flush."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
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


@transaction.atomic
def failed_job_retry(*, ids: Iterable[int] | None = None, queue: str | None = None) -> list[str]:
    """Dispatch failed jobs again with fresh attempts, then delete their rows.

    ``ids=None`` means all (optionally of one ``queue``). Rows are locked, and
    rows another operator is retrying right now are skipped, so a job is never
    dispatched twice; the dispatches go out when this transaction commits.
    Returns the new job ids.
    """
    rows = FailedJob.objects.select_for_update(skip_locked=True).order_by("id")
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    if queue is not None:
        rows = rows.filter(queue=queue)
    new_ids = []
    for row in rows:
        new_ids.append(_redispatch(row))
        row.delete()
    return new_ids


def _redispatch(row: FailedJob) -> str:
    from queueing.definitions import definition_for
    from queueing.dispatch import dispatch, get_queue

    definition = definition_for(row.job_name)
    if definition is not None:
        return dispatch(definition, list(row.args), dict(row.kwargs)).job_id
    # Not declared with @job (a plain RQ function): enqueue it as it was.
    job_id = uuid.uuid4().hex
    target = get_queue(row.queue)
    name, args, kwargs = row.job_name, list(row.args), dict(row.kwargs)
    transaction.on_commit(lambda: target.enqueue_call(name, args=args, kwargs=kwargs, job_id=job_id))
    return job_id


@transaction.atomic
def failed_job_forget(*, ids: Iterable[int]) -> int:
    deleted, _ = FailedJob.objects.filter(pk__in=list(ids)).delete()
    return deleted


@transaction.atomic
def failed_job_flush(*, older_than_hours: int | None = None) -> int:
    rows = FailedJob.objects.all()
    if older_than_hours is not None:
        rows = rows.filter(failed_at__lt=timezone.now() - timedelta(hours=older_than_hours))
    deleted, _ = rows.delete()
    return deleted
