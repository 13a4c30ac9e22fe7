"""Finding jobs whose worker died (SIGKILL, OOM, power loss) and settling them.

A worker claims a job with a short expiry in RQ's StartedJobRegistry and keeps
extending it while the job runs. When the worker dies the claim expires; the
reaper (run by every worker and by the scheduler, under a lock so one runs at
a time) retries the job if it has attempts left or fails it into the ledger.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from queueing import keys
from queueing.failures import FAILURE_FIELD, Failure, settle, unpack

log = logging.getLogger(__name__)

ABANDONED = Failure(
    exception_class="rq.exceptions.AbandonedJobError",
    message="the worker running this job stopped without finishing it (killed or lost)",
    traceback="",
)


def reap(conn: Redis, queues: Iterable[Queue], *, now: float | None = None, worker_name: str = "reaper") -> int:
    """Settle every expired claim; returns how many jobs were settled."""
    # One reaper at a time; the lock outlives a slow pass, not a dead reaper.
    if not conn.set(keys.REAPER_LOCK, os.getpid(), nx=True, ex=30):
        return 0
    settled = 0
    try:
        cutoff = time.time() if now is None else now
        for queue in queues:
            settled += _reap_queue(conn, queue, cutoff, worker_name)
    finally:
        conn.delete(keys.REAPER_LOCK)
    return settled


def _reap_queue(conn: Redis, queue: Queue, cutoff: float, worker_name: str) -> int:
    registry_key = queue.started_job_registry.key
    settled = 0
    for raw in conn.zrangebyscore(registry_key, 0, cutoff):
        member = raw.decode() if isinstance(raw, bytes) else str(raw)
        job_id = member.split(":", 1)[0]
        try:
            job = Job.fetch(job_id, connection=conn, serializer=queue.serializer)
        except NoSuchJobError:
            conn.zrem(registry_key, member)
            continue
        if job.get_status(refresh=False) != JobStatus.STARTED:
            # Finished or failed already; only the registry entry was left over.
            conn.zrem(registry_key, member)
            continue
        # A stored failure means the worker had already decided "fail finally"
        # and died recording it: finish that decision, do not retry.
        stored = unpack(conn.hget(job.key, FAILURE_FIELD))
        outcome = settle(
            job=job,
            queue=queue,
            member=member,
            failure=stored or ABANDONED,
            worker_name=worker_name,
            permanent=stored is not None,
        )
        log.warning("abandoned job %s (%s) %s", job.id, job.func_name, outcome)
        settled += 1
    return settled
