"""RQ's ``depends_on`` on our workers: dependents released when their parent settles.

RQ enqueues a job with ``depends_on`` as *deferred*: its id goes into the
parent's dependents set and the DeferredJobRegistry. RQ's own worker releases
the dependents in the transaction that marks the parent finished; ours reads
the dependents set in its success round trip (one SMEMBERS, the only cost to a
job without dependents) and, when there are any, hands the parent to RQ's
``Queue.enqueue_dependents``: dependents whose dependencies are all met go to
the ReadyJobRegistry, then onto their queues, each step under WATCH so two
callers never push one twice. A final failure does the same, so a
``Dependency(..., allow_failure=True)`` runs; other dependents of a failed job
stay deferred, as in RQ.

Nothing is lost if the worker dies between its success round trip and that
call: the reaper's :func:`sweep` finds deferred jobs whose dependencies are all
met and releases them, and pushes what RQ left in the ReadyJobRegistry.
docs/rq-contract.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

log = logging.getLogger(__name__)

SWEEP_LIMIT = 500  # deferred jobs looked at per queue and pass (oldest first)


def release(queue: Queue, parent: Job) -> int:
    """Push the parent's dependents that are now free to run; returns how many."""
    try:
        moved = queue.enqueue_dependents(parent)
    except Exception:  # the reaper's sweep finds them
        log.exception("could not release the dependents of %s; the reaper's sweep will", parent.id)
        return 0
    return sum(len(ids) for ids in moved.values())


def sweep(conn: Redis, queues: Iterable[Queue]) -> int:
    """Release deferred jobs whose dependencies have all settled; returns how many were pushed."""
    released = 0
    for queue in queues:
        released += len(queue.ready_job_registry.cleanup())  # moved to ready, never pushed
        ids = [
            i.decode() if isinstance(i, bytes) else str(i)
            for i in conn.zrange(queue.deferred_job_registry.key, 0, SWEEP_LIMIT - 1)
        ]
        for job in Job.fetch_many(ids, connection=conn, serializer=queue.serializer):
            if job is None or not job.dependencies_are_met():
                continue
            parents = job.dependency_ids
            if not parents:
                continue
            try:
                parent = Job.fetch(parents[0], connection=conn, serializer=queue.serializer)
            except NoSuchJobError:
                continue
            released += release(queue, parent)
    return released
