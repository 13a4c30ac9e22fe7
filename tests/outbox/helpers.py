"""Reading what the relay put on a queue, batches included."""

from __future__ import annotations

from queueing.dispatch import get_queue


def carried(queue: str = "default") -> list[int]:
    """The message ids the queue's delivery jobs carry, one entry per delivery
    (a message in two jobs is listed twice)."""
    ids: list[int] = []
    for job in get_queue(queue).get_jobs():
        if job.func_name == "outbox.jobs.deliver":
            ids.append(int(job.args[0]))
        elif job.func_name == "outbox.jobs.deliver_batch":  # (first message, handler, attempt, more, …)
            ids += [int(job.args[0]), *(int(m) for m, _ in job.args[3])]
    return ids
