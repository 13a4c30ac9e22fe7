"""A task's ``TaskResult`` read back from its RQ job and the failed-job ledger.

Status from the job's status; the return value from RQ's latest ``Result``;
errors from the ledger row (exception class and traceback) when the task
failed finally; the attempts from the job's tries. A job whose hash has
expired but which is in the ledger still reads FAILED.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result

from queueing.dispatch import get_queue, redis_connection
from queueing.failures import attempt_number
from queueing.task_backend.compat import (
    BaseTaskBackend,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
)

STATUS = {
    JobStatus.QUEUED: TaskResultStatus.READY,
    JobStatus.SCHEDULED: TaskResultStatus.READY,
    JobStatus.DEFERRED: TaskResultStatus.READY,
    JobStatus.STARTED: TaskResultStatus.RUNNING,
    JobStatus.FINISHED: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.STOPPED: TaskResultStatus.FAILED,
    JobStatus.CANCELED: TaskResultStatus.FAILED,
}


def read(backend: BaseTaskBackend, result_id: str) -> TaskResult[Any]:
    from queueing.models import FailedJob

    row = FailedJob.objects.filter(job_id=result_id).first()
    try:
        job = Job.fetch(result_id, connection=redis_connection(), serializer=get_queue("default").serializer)
    except NoSuchJobError:
        if row is None:
            raise TaskResultDoesNotExist(result_id) from None
        return _from_ledger(backend, row)
    status = STATUS.get(job.get_status(refresh=False) or JobStatus.QUEUED, TaskResultStatus.READY)
    attempts = attempt_number(job) if status != TaskResultStatus.READY else attempt_number(job) - 1
    result: TaskResult[Any] = TaskResult(
        task=_task(job.func_name or "", backend, job.meta.get("task_queue") or job.origin),
        id=job.id,
        status=status,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        finished_at=job.ended_at if status in {TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED} else None,
        last_attempted_at=job.started_at,
        args=list(job.args),
        kwargs=dict(job.kwargs),
        backend=backend.alias,
        errors=_errors(row) if status == TaskResultStatus.FAILED else [],
        worker_ids=[job.worker_name or ""] * max(0, attempts),
    )
    if status == TaskResultStatus.SUCCESSFUL:
        latest = job.latest_result()
        if latest is not None and latest.type == Result.Type.SUCCESSFUL:
            object.__setattr__(result, "_return_value", latest.return_value)
    return result


def running(backend: BaseTaskBackend, job: Job, task: Any) -> TaskResult[Any]:
    """The result a running task sees (its context, the signals): no Redis or database read."""
    return TaskResult(
        task=task.using(queue_name=job.meta.get("task_queue") or job.origin, backend=backend.alias),
        id=job.id,
        status=TaskResultStatus.RUNNING,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        finished_at=None,
        last_attempted_at=job.started_at,
        args=list(job.args),
        kwargs=dict(job.kwargs),
        backend=backend.alias,
        errors=[],
        worker_ids=[job.worker_name or ""] * attempt_number(job),
    )


def _from_ledger(backend: BaseTaskBackend, row: Any) -> TaskResult[Any]:
    return TaskResult(
        task=_task(row.job_name, backend, row.queue),
        id=row.job_id,
        status=TaskResultStatus.FAILED,
        enqueued_at=None,
        started_at=None,
        finished_at=row.failed_at,
        last_attempted_at=row.failed_at,
        args=list(row.args),
        kwargs=dict(row.kwargs),
        backend=backend.alias,
        errors=_errors(row),
        worker_ids=[row.worker] * row.attempts,
    )


def _errors(row: Any) -> list[TaskError]:
    if row is None:
        return []
    return [TaskError(exception_class_path=row.exception_class, traceback=row.traceback)]


def _task(module_path: str, backend: BaseTaskBackend, queue: str) -> Any:
    task = import_string(module_path)
    return task.using(queue_name=queue, backend=backend.alias)
