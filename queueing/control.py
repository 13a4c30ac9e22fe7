"""Operator controls over running workers, through Redis: pause, continue, restart."""

from __future__ import annotations

import time

from redis import Redis
from rq import Queue

from queueing import keys, unique


def queue_pause(conn: Redis, queue: str) -> bool:
    """Workers stop taking jobs from ``queue`` (within a second); others keep flowing."""
    return bool(conn.sadd(keys.PAUSED_QUEUES, queue))


def queue_continue(conn: Redis, queue: str) -> bool:
    return bool(conn.srem(keys.PAUSED_QUEUES, queue))


def paused_queues(conn: Redis) -> set[str]:
    return {m.decode() if isinstance(m, bytes) else str(m) for m in conn.smembers(keys.PAUSED_QUEUES)}


def queue_restart(conn: Redis) -> float:
    """Every running worker finishes its job in hand and exits (its supervisor restarts it)."""
    stamp = time.time()
    conn.set(keys.RESTART_SIGNAL, repr(stamp))
    return stamp


CLEAR_CHUNK = 1000


def queue_clear(queue: Queue) -> int:
    """Delete every pending job of ``queue`` (Laravel's ``queue:clear``); returns how many.

    The list is taken and deleted in one MULTI, so a worker either claimed a
    job before (it runs) or never sees it; then each taken job's hash goes and
    its unique lock is freed, so the same work can be dispatched again at once.
    Delayed jobs (not yet due) and running jobs are left alone.
    """
    from rq.job import Job

    from queueing.definitions import definition_for

    conn = queue.connection
    with conn.pipeline(transaction=True) as pipe:
        pipe.lrange(queue.key, 0, -1)
        pipe.delete(queue.key)
        raw_ids, _ = pipe.execute()
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in raw_ids]
    for start in range(0, len(ids), CLEAR_CHUNK):
        chunk = ids[start : start + CLEAR_CHUNK]
        for job in Job.fetch_many(chunk, connection=conn, serializer=queue.serializer):
            definition = definition_for(job.func_name or "") if job is not None else None
            if job is not None and definition is not None and definition.is_unique:
                # Only if this job still holds it (compare-and-delete).
                unique.release(conn, lock_key=definition.unique_lock_key(job.args, job.kwargs), job_id=job.id)
        conn.delete(*(Job.key_for(i) for i in chunk))
    return len(ids)
