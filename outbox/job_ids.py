"""The ids of the jobs that deliver an outbox message: the relay writes them,
the coroner looks them up in Redis. One owner of the format."""

from __future__ import annotations


def delivery_job_ids(message_id: int, attempt: int, handlers: int) -> list[str]:
    # Unique per dispatch (no colons: RQ composite keys split on them).
    return [f"outbox-{message_id}-{attempt}-{n}" for n in range(handlers)]
