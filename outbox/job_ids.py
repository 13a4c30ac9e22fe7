"""The ids of the jobs that deliver an outbox message: the relay writes them,
the coroner looks them up in Redis. One owner of the format.

No colons anywhere: RQ composite keys split on them.

- ``outbox-<message>-<attempt>-<n>``: the message's own job for its n-th
  handler (route) at that dispatch — the relay's single job, or the job that
  retries a message alone after it failed in a batch (or was handed on by one);
- ``outbox-batch-<head>-<token>-<n>``: a batch job carrying several messages
  for the n-th route of their event type. The messages of one batch share the
  event type's whole route list, so the batches of routes 0, 1, … of a chunk
  carry the same messages and differ only in ``n``: a message records the id
  for route 0 (``OutboxMessage.job_id``) and the others follow from it. The
  token is random per chunk: a relay killed between enqueue and commit never
  lets the next pass overwrite a batch job with other members.
"""

from __future__ import annotations

BATCH_PREFIX = "outbox-batch-"


def single_job_id(message_id: int, attempt: int, index: int) -> str:
    return f"outbox-{message_id}-{attempt}-{index}"


def delivery_job_ids(message_id: int, attempt: int, handlers: int) -> list[str]:
    return [single_job_id(message_id, attempt, n) for n in range(handlers)]


def batch_job_id(head_id: int, token: str, index: int) -> str:
    return f"{BATCH_PREFIX}{head_id}-{token}-{index}"


def carrier_job_ids(message_id: int, attempt: int, handlers: int, recorded: str) -> list[str]:
    """Every job that may be carrying this dispatch of the message: its own
    job per handler and, when ``recorded`` (its ``job_id``) names a batch, the
    batch per handler. It is lost only when none of them is alive."""
    ids = delivery_job_ids(message_id, attempt, handlers)
    if recorded.startswith(BATCH_PREFIX):
        stem = recorded.rpartition("-")[0]
        ids += [f"{stem}-{n}" for n in range(handlers)]
    return ids
