"""What the master reads from Redis each tick: queue depths and head ages,
pauses, the terminate signal, and the children's own counters (busy flags and
the per-queue moving average of job runtimes that the "time" strategy uses)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from redis import Redis
from rq.job import Job
from rq.utils import utcparse
from rq.worker import Worker

from lib.text import as_text
from queueing import keys
from queueing.supervisor.children import Child, Observation

RUNTIME_WEIGHT = 0.3  # weight of the newest runtime sample in the per-queue moving average


def read(
    conn: Redis, queue_keys: Mapping[str, str], children: Sequence[Child]
) -> tuple[Observation, list[Sequence[bytes | None]]]:
    """Queue depths, heads, pause set, terminate signal and the children's
    counters in one round trip; the head jobs' ages in a second one.
    Returns the observation and the children's counter rows."""
    queues = list(queue_keys)
    with conn.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue_keys[queue])
            pipe.lindex(queue_keys[queue], 0)
        pipe.smembers(keys.PAUSED_QUEUES)
        pipe.get(keys.SUPERVISOR_TERMINATE)
        for child in children:
            pipe.hmget(
                Worker.redis_worker_namespace_prefix + child.name,
                "state",
                "successful_job_count",
                "total_working_time",
            )
        replies = pipe.execute()
    n = len(queues)
    depths = {q: int(replies[2 * i]) for i, q in enumerate(queues)}
    heads = {q: replies[2 * i + 1] for i, q in enumerate(queues) if replies[2 * i + 1]}
    paused = {as_text(p) for p in replies[2 * n]}
    return Observation(depths, head_ages(conn, heads), paused, replies[2 * n + 1]), replies[2 * n + 2 :]


def head_ages(conn: Redis, heads: Mapping[str, bytes]) -> dict[str, float]:
    if not heads:
        return {}
    with conn.pipeline(transaction=False) as pipe:
        for job_id in heads.values():
            pipe.hget(Job.key_for(as_text(job_id)), "enqueued_at")
        stamps = pipe.execute()
    now = time.time()
    return {q: max(0.0, now - utcparse(as_text(s)).timestamp()) for q, s in zip(heads, stamps, strict=True) if s}


def update_children(
    children: Sequence[Child],
    rows: Sequence[Sequence[bytes | None]],
    runtimes: dict[str, float],
    queue_of: Callable[[Child], str | None],
) -> None:
    """Busy flags, and the per-queue moving average of job runtimes from
    the workers' own counters (what the "time" strategy multiplies by depth)."""
    samples: dict[str, tuple[int, float]] = {}
    for child, (state, jobs, seconds) in zip(children, rows, strict=True):
        child.busy = as_text(state) == "busy"
        total = (int(jobs or 0), float(seconds or 0.0))
        new_jobs, new_seconds = total[0] - child.counted[0], total[1] - child.counted[1]
        child.counted = total
        queue = queue_of(child)
        if queue is not None and new_jobs > 0:
            jobs_sum, seconds_sum = samples.get(queue, (0, 0.0))
            samples[queue] = (jobs_sum + new_jobs, seconds_sum + new_seconds)
    for queue, (jobs_sum, seconds_sum) in samples.items():
        sample = seconds_sum / jobs_sum
        old = runtimes.get(queue)
        runtimes[queue] = sample if old is None else old + RUNTIME_WEIGHT * (sample - old)
