"""Settling a failed attempt: retry it, or fail it finally into the ledger.

Shared by the worker (an attempt raised or timed out) and the reaper (an
attempt whose worker died). The final path is exactly-once: the ledger row is
unique per job id and the failure hook runs in the same database transaction
as its insert, so settling the same job twice (a crash between steps, then the
reaper) records it and calls the hook once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from django.db import DatabaseError, close_old_connections, transaction
from rq import Queue
from rq.job import Job, JobStatus
from rq.rate_limit import release_slot
from rq.results import Result
from rq.utils import now

from queueing import dependents, unique
from queueing.claims import unclaim
from queueing.definitions import Backoff, JobDefinition, backoff_delays, definition_for

log = logging.getLogger(__name__)

FAILURE_FIELD = "vito_failure"
LEDGER_RETRY_DELAYS = (0.5, 1, 2, 4, 8)  # a PostgreSQL restart takes seconds


@dataclass(frozen=True)
class Failure:
    exception_class: str
    message: str
    traceback: str
    exception: BaseException | None = None


def apply_worker_defaults(job: Job, tries: int, backoff: Backoff) -> None:
    """A worker's ``--tries``/``--backoff`` apply to jobs that declared no tries."""
    if job.retries_left is None and not job.meta.get("tries") and tries > 1:
        job.retries_left = tries - 1
        job.retry_intervals = backoff_delays(backoff, tries - 1)
        job.meta["tries"] = tries


def attempt_number(job: Job) -> int:
    tries = int(job.meta.get("tries") or 1)
    return max(1, tries - (job.retries_left or 0))


def settle(
    *,
    job: Job,
    queue: Queue,
    member: str,
    failure: Failure,
    worker_name: str,
    permanent: bool,
    status: JobStatus = JobStatus.FAILED,
) -> Literal["retried", "failed"]:
    """Retry the job if it has attempts left and the error is not permanent; else fail it finally
    (``status``: FAILED, or STOPPED for a job stopped by request)."""
    if not permanent and job.should_retry:
        _retry(job, queue, member)  # an RQ rate-limit slot stays with the job, as in RQ
        log.warning(
            "%s %s attempt %d failed (%s: %s); %d left",
            job.func_name,
            job.id,
            attempt_number(job) - 1,
            failure.exception_class,
            failure.message[:200],
            job.retries_left or 0,
        )
        return "retried"

    # Keep the cause on the job first: if we die before the ledger has it,
    # the reaper settles this job again with the original exception.
    job.connection.hset(job.key, FAILURE_FIELD, _pack(failure))
    definition = definition_for(job.func_name or "")
    _record(job, queue, failure, worker_name, definition)
    job.ended_at = now()
    with job.connection.pipeline() as pipe:  # MULTI: all or nothing
        unclaim(pipe, queue, member)
        job.set_status(status, pipeline=pipe)
        queue.failed_job_registry.add(job, ttl=job.failure_ttl, exc_string=failure.traceback, pipeline=pipe)
        # What RQ writes for a failure: job.latest_result() and django-rq's job page read it.
        Result.create_failure(
            job, job.failure_ttl, exc_string=failure.traceback, worker_name=worker_name, pipeline=pipe
        )
        pipe.exists(job.dependents_key)
        has_dependents = bool(pipe.execute()[-1])
    if definition is not None and definition.is_unique and not definition.unique_until_processing:
        unique.release(
            job.connection,
            lock_key=definition.unique_lock_key(job.args, job.kwargs),
            job_id=job.id,
        )
    if has_dependents:
        dependents.release(queue, job)
    if job.has_rate_limit:  # RQ's concurrency limit: the slot is free, the next waiting job goes
        release_slot(job)  # those that allow the failure run; the rest stay deferred
    log.error(
        "%s %s failed after %d attempt(s): %s: %s",
        job.func_name,
        job.id,
        attempt_number(job),
        failure.exception_class,
        failure.message[:500],
    )
    return "failed"


def _retry(job: Job, queue: Queue, member: str) -> None:
    """RQ's ``Job.retry`` in one MULTI: its own version writes the status
    outside the pipeline, and a crash in between would strand the job."""
    interval = job.get_retry_interval()
    assert job.retries_left
    job.retries_left -= 1
    with job.connection.pipeline() as pipe:
        unclaim(pipe, queue, member)
        if interval:
            queue.schedule_job(job, now() + timedelta(seconds=interval), pipeline=pipe)
        else:
            queue._enqueue_job(job, pipeline=pipe)  # what Job.retry itself calls
        pipe.execute()


def _record(
    job: Job, queue: Queue, failure: Failure, worker_name: str, definition: JobDefinition[Any, Any] | None
) -> None:
    from queueing.services import FailureRecord, failed_job_record

    args, kwargs = list(job.args), dict(job.kwargs)
    record = FailureRecord(
        job_id=job.id,
        queue=queue.name,
        job_name=job.func_name or "",
        args=args,
        kwargs=kwargs,
        exception_class=failure.exception_class,
        message=failure.message,
        traceback=failure.traceback,
        attempts=attempt_number(job),
        worker=worker_name,
        tenant_id=definition.tenant_id(args, kwargs) if definition is not None else None,
    )
    for delay in (*LEDGER_RETRY_DELAYS, None):
        try:
            with transaction.atomic():
                _row, created = failed_job_record(record=record)
                if created and definition is not None and definition.on_failure is not None:
                    _call_hook(definition, failure, args, kwargs)
            return
        except DatabaseError:
            if delay is None:
                raise
            log.warning("ledger write for %s failed; retrying in %ss", job.id, delay, exc_info=True)
            close_old_connections()
            time.sleep(delay)


def _call_hook(definition: JobDefinition[Any, Any], failure: Failure, args: list[Any], kwargs: dict[str, Any]) -> None:
    assert definition.on_failure is not None
    exc = failure.exception or RuntimeError(f"{failure.exception_class}: {failure.message}")
    try:
        # A savepoint: a broken hook must not undo the ledger row.
        with transaction.atomic():
            definition.on_failure(exc, *args, **kwargs)
    except Exception:
        log.exception("failure hook of %s raised", definition.name)


def _pack(failure: Failure) -> str:
    import json

    return json.dumps([failure.exception_class, failure.message, failure.traceback])


def unpack(raw: bytes | str | None) -> Failure | None:
    import json

    if not raw:
        return None
    try:
        cls, message, tb = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return Failure(str(cls), str(message), str(tb))
