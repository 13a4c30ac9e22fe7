"""Finding jobs whose worker died (SIGKILL, OOM, power loss) and settling them.

A worker claims a job with a short expiry (``vito:claims:<queue>``) and keeps
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

from queueing import dependents, keys, scripts
from queueing.claims import takeover, unclaim
from queueing.failures import FAILURE_FIELD, Failure, settle, unpack

log = logging.getLogger(__name__)

CLAIM_TTL = 60  # the reaper's own claim on a job while it settles it (a few round trips)

ABANDONED = Failure(
    exception_class="rq.exceptions.AbandonedJobError",
    message="the worker running this job stopped without finishing it (killed or lost)",
    traceback="",
)


def reap(conn: Redis, queues: Iterable[Queue], *, now: float | None = None, worker_name: str = "reaper") -> int:
    """Settle every expired claim; returns how many attempts were settled."""
    # One pass at a time (efficiency); correctness comes from the per-claim takeover.
    token = f"{os.getpid()}:{time.time()}"
    if not conn.set(keys.REAPER_LOCK, token, nx=True, ex=60):
        return 0
    settled = 0
    try:
        cutoff = time.time() if now is None else now
        queues = list(queues)
        for queue in queues:
            settled += _reap_queue(conn, queue, cutoff, worker_name)
        dependents.sweep(conn, queues)
    finally:
        scripts.release(conn, keys.REAPER_LOCK, token)
    return settled


def _reap_queue(conn: Redis, queue: Queue, cutoff: float, worker_name: str) -> int:
    claims_key = keys.claims(queue.name)
    settled = 0
    for raw in conn.zrangebyscore(claims_key, 0, cutoff):
        member = raw.decode() if isinstance(raw, bytes) else str(raw)
        # Take the claim over first: of two reapers, one wins; if we die now,
        # the claim expires again and another reaper settles it.
        if not takeover(conn, queue, member, cutoff=cutoff, hold=CLAIM_TTL):
            continue
        job_id, _, execution = member.rpartition(":")  # job ids may contain colons; executions never do
        try:
            job = Job.fetch(job_id, connection=conn, serializer=queue.serializer)
        except NoSuchJobError:
            _drop(conn, queue, member)
            continue
        current = conn.hget(job.key, "vito_execution")
        current_text = current.decode() if isinstance(current, bytes) else current
        if job.get_status(refresh=False) != JobStatus.STARTED or current_text != execution:
            # Finished, or already running again under another claim: only
            # this stale entry is left over.
            _drop(conn, queue, member)
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


def _drop(conn: Redis, queue: Queue, member: str) -> None:
    with conn.pipeline() as pipe:
        unclaim(pipe, queue, member)
        pipe.execute()
