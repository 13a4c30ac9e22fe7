"""The queue dashboard's recently finished jobs: a short record per queue.

Our workers delete a job's hash when it finishes (``result_ttl=0``, nothing to
keep), so RQ's finished registry stays empty and the dashboard would show only
queued and running work. Instead, each attempt that ends adds one compact
entry (id, name, outcome, arguments cut short, runtime) to a capped Redis list
per queue, on the pipeline the worker sends anyway: ``PER_QUEUE`` entries
(plus a few between trims), none older than ``KEEP_SECONDS`` shown, and the
list expires about that long after its queue went idle (Horizon's "completed
jobs", trimmed by age).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job

from queueing import keys, metrics
from queueing.definitions import JobDefinition

PER_QUEUE = 50
KEEP_SECONDS = 3600
ARGS_SHOWN = 120  # characters of the JSON arguments


@dataclass(frozen=True)
class Finished:
    id: str
    queue: str
    name: str
    status: str  # "finished" or "failed" (a failed attempt, retried or not)
    args: str
    at: float  # unix time it ended
    runtime_s: float


def args_text(args: Iterable[Any], kwargs: dict[str, Any]) -> str:
    try:
        text = json.dumps(list(args) + ([kwargs] if kwargs else []))
    except (TypeError, ValueError):  # an undecodable payload still deserves a row
        text = "(undecodable)"
    return text if len(text) <= ARGS_SHOWN else text[: ARGS_SHOWN - 1] + "…"


# Each process trims a queue's list (and renews its expiry) after every
# TRIM_EVERY of its own pushes to it, not after each: about one command per
# job instead of three. A list is then at most PER_QUEUE + TRIM_EVERY ×
# (processes) long between trims; reads take the first PER_QUEUE.
TRIM_EVERY = 10
_pushes: dict[str, itertools.count[int]] = {}


def record_in(pipe: Any, entry: Finished) -> None:
    """Queue the entry on ``pipe``: push; now and then cap the list and renew its expiry."""
    key = keys.recent_finished(entry.queue)
    value = json.dumps([entry.id, entry.name, entry.status, entry.args, round(entry.at, 3), round(entry.runtime_s, 4)])
    pipe.lpush(key, value)
    if next(_pushes.setdefault(key, itertools.count(1))) % TRIM_EVERY == 1:  # a process's first push trims too
        pipe.ltrim(key, 0, PER_QUEUE - 1)
        pipe.expire(key, KEEP_SECONDS)


def read(conn: Redis, queues: Iterable[str], *, now: float | None = None) -> list[Finished]:
    """The entries of ``queues`` younger than KEEP_SECONDS, newest first."""
    cutoff = (time.time() if now is None else now) - KEEP_SECONDS
    names = list(queues)
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.lrange(keys.recent_finished(name), 0, PER_QUEUE - 1)
        lists = pipe.execute()
    out: list[Finished] = []
    for name, raw_entries in zip(names, lists, strict=True):
        for raw in raw_entries:
            try:
                job_id, job_name, status, args, at, runtime = json.loads(raw)
                entry = Finished(str(job_id), name, str(job_name), str(status), str(args), float(at), float(runtime))
            except (ValueError, TypeError):
                continue  # written by another version: skip it, it ages out
            if entry.at >= cutoff:
                out.append(entry)
    out.sort(key=lambda e: e.at, reverse=True)
    return out


def record_attempt(
    pipe: Any,
    job: Job,
    queue: Queue,
    definition: JobDefinition[Any, Any] | None,
    runtime_s: float,
    *,
    wait_s: float | None,
    failed: bool,
) -> None:
    """What one finished attempt leaves for the operators: the per-minute counters
    (dashboard, snapshots, alerts) and this list's entry, on the pipeline the
    worker sends anyway (no round trip of their own)."""
    try:
        args, kwargs = list(job.args), dict(job.kwargs)
    except Exception:  # args that no longer deserialize: count the job, not the tenant
        args, kwargs = ["(undecodable)"], {}
    try:
        tenant_id = definition.tenant_id(args, kwargs) if definition is not None else None
    except Exception:
        tenant_id = None
    record_in(
        pipe,
        Finished(
            id=job.id,
            queue=queue.name,
            name=job.func_name or "?",
            status="failed" if failed else "finished",
            args=args_text(args, kwargs),
            at=time.time(),
            runtime_s=runtime_s,
        ),
    )
    metrics.record(
        pipe,
        queue=queue.name,
        job_name=job.func_name or "?",
        tenant_id=tenant_id,
        runtime_s=runtime_s,
        wait_s=wait_s,
        failed=failed,
    )
