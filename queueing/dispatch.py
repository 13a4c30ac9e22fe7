"""Putting jobs on queues: after commit, as JSON, unique when declared so."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import django_rq
from django.conf import settings
from django.db import transaction
from redis import Redis
from rq import Queue, Retry
from rq.job import Job

from queueing import unique
from queueing.definitions import JobDefinition, backoff_delays
from queueing.topology import default_tries, physical_queue

log = logging.getLogger(__name__)

Status = Literal["queued", "scheduled", "on_commit", "duplicate"]


@dataclass
class Dispatch:
    """What a dispatch did. Inside a transaction the enqueue waits for commit
    (``on_commit``); a duplicate found then is logged, as the caller is gone."""

    job_id: str
    job_name: str
    queue: str
    status: Status
    duplicate_of: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status != "duplicate"


class NotJSONArgument(TypeError):
    pass


_queues: dict[str, Queue] = {}


def get_queue(name: str) -> Queue:
    """The queue ``name``, one instance per process.

    django-rq builds a new Redis client (and connection pool) on every call, so
    each dispatch would open a connection and ask the server's version again;
    redis-py's pool is thread-safe and resets itself after a fork.
    """
    if name not in _queues:
        # "auto": we defer to commit ourselves, so the queue must not defer again.
        _queues[name] = django_rq.get_queue(name, commit_mode="auto")
    return _queues[name]


def redis_connection() -> Redis:
    """The Redis connection of this process: the one every part of the runtime
    uses (all queues share one server; its timeouts come from settings)."""
    return get_queue(next(iter(settings.RQ_QUEUES))).connection


def check_json(definition: JobDefinition[Any, Any], args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """Fail at dispatch, naming the argument, rather than in the worker."""
    named = [(f"argument {i}", value) for i, value in enumerate(args)] + [
        (f"argument {k!r}", v) for k, v in kwargs.items()
    ]
    for label, value in named:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise NotJSONArgument(
                f"{definition.name}: {label} is a {type(value).__name__}, which is not JSON ({exc}). "
                "Pass plain ids and values (e.g. order.pk), never model instances."
            ) from None


FAILURE_TTL = 7 * 24 * 3600  # RQ's failed registry keeps a week, like the ledger's default view


def _job_options(definition: JobDefinition[Any, Any], job_id: str, physical: str) -> dict[str, Any]:
    """The RQ job options a definition implies on queue ``physical``; one place
    for create_job and prepare_data. Tries: the job's, else its queue's (the
    layout), else — left unset here — the worker's ``--tries``."""
    tries = definition.tries or default_tries(physical)
    retries = (tries or 1) - 1
    return {
        "timeout": definition.timeout,
        "result_ttl": definition.result_ttl,
        "failure_ttl": FAILURE_TTL,
        "job_id": job_id,
        "retry": Retry(max=retries, interval=backoff_delays(definition.backoff, retries)) if retries else None,
        "meta": {"tries": tries} if tries else None,
    }


def _build(
    definition: JobDefinition[Any, Any], queue: Queue, args: Sequence[Any], kwargs: dict[str, Any], job_id: str
) -> Job:
    return queue.create_job(
        definition.name, args=list(args), kwargs=kwargs, **_job_options(definition, job_id, queue.name)
    )


def _enqueue_now(
    definition: JobDefinition[Any, Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    job_id: str,
    when: datetime | None,
) -> Dispatch:
    physical = physical_queue(definition.queue)
    queue = get_queue(physical)
    if definition.is_unique:
        holder = unique.acquire(
            queue.connection,
            lock=definition.unique_lock_key(args, kwargs),
            job_id=job_id,
            seconds=int(definition.unique_for or 0),
        )
        if holder is not None:
            log.info("%s not dispatched: unique job %s already queued or running", definition.name, holder)
            return Dispatch(job_id, definition.name, physical, "duplicate", duplicate_of=holder)
    job = _build(definition, queue, args, kwargs, job_id)
    if when is not None:
        queue.schedule_job(job, when)
        return Dispatch(job_id, definition.name, physical, "scheduled")
    queue.enqueue_job(job)
    return Dispatch(job_id, definition.name, physical, "queued")


def dispatch(
    definition: JobDefinition[Any, Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    delay: timedelta | None = None,
    at: datetime | None = None,
) -> Dispatch:
    """Enqueue now, or — inside ``transaction.atomic()`` — when it commits (never on rollback)."""
    check_json(definition, args, kwargs)
    physical = physical_queue(definition.queue)  # an unrouted queue fails here, not after commit
    when = None
    if delay is not None:
        when = datetime.now(UTC) + delay
    elif at is not None:
        if at.tzinfo is None:
            raise ValueError(f"{definition.name}: dispatch_at needs an aware datetime, got {at!r}")
        when = at.astimezone(UTC)
    job_id = uuid.uuid4().hex
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _enqueue_now(definition, args, kwargs, job_id, when))
        return Dispatch(job_id, definition.name, physical, "on_commit")
    return _enqueue_now(definition, args, kwargs, job_id, when)


def _enqueue_chunk(definition: JobDefinition[Any, Any], calls: list[tuple[str, Sequence[Any]]]) -> list[Dispatch]:
    physical = physical_queue(definition.queue)
    queue = get_queue(physical)
    conn = queue.connection
    results: list[Dispatch] = []
    if definition.is_unique:
        # One round trip to take every lock of the chunk, then one to enqueue the winners.
        with conn.pipeline(transaction=False) as pipe:
            for job_id, args in calls:
                pipe.set(
                    definition.unique_lock_key(args, {}),
                    job_id,
                    nx=True,
                    ex=int(definition.unique_for or 0),
                )
            won = pipe.execute()
        winners = []
        for (job_id, args), ok in zip(calls, won, strict=True):
            if ok:
                winners.append((job_id, args))
            else:
                log.info("%s not dispatched: unique key %s taken", definition.name, definition.lock_key(args, {}))
                results.append(Dispatch(job_id, definition.name, physical, "duplicate"))
        calls = winners
    with conn.pipeline() as pipe:
        datas = [
            Queue.prepare_data(
                definition.name, args=list(args), kwargs={}, **_job_options(definition, job_id, physical)
            )
            for job_id, args in calls
        ]
        queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
    results.extend(Dispatch(job_id, definition.name, physical, "queued") for job_id, _ in calls)
    return results


def dispatch_many(
    definition: JobDefinition[Any, Any], calls: Sequence[Sequence[Any]], *, chunk_size: int = 1000
) -> list[Dispatch]:
    """Fan-out: one Redis round trip per ``chunk_size`` jobs (two for unique jobs)."""
    physical = physical_queue(definition.queue)
    prepared: list[tuple[str, Sequence[Any]]] = []
    for args in calls:
        check_json(definition, args, {})
        prepared.append((uuid.uuid4().hex, tuple(args)))
    chunks = [prepared[i : i + chunk_size] for i in range(0, len(prepared), chunk_size)]

    def run() -> list[Dispatch]:
        out: list[Dispatch] = []
        for chunk in chunks:
            out.extend(_enqueue_chunk(definition, chunk))
        return out

    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(run)
        return [Dispatch(job_id, definition.name, physical, "on_commit") for job_id, _ in prepared]
    return run()


def enqueue_now_rollback_unsafe(
    definition: JobDefinition[Any, Any], calls: Sequence[tuple[Sequence[Any], dict[str, Any]]]
) -> list[Dispatch]:
    """Enqueue ``(args, kwargs)`` calls *now*, whatever transaction surrounds us.

    For callers that hold rows locked and must know the jobs are in Redis
    before they delete those rows (retrying failed jobs): if this raises,
    their transaction rolls back and nothing is lost. Positional-only calls
    go out in bulk (one round trip per 1,000, unique locks included).
    """
    positional = [args for args, kwargs in calls if not kwargs]
    out: list[Dispatch] = []
    for chunk_start in range(0, len(positional), 1000):
        chunk = positional[chunk_start : chunk_start + 1000]
        for args in chunk:
            check_json(definition, args, {})
        out += _enqueue_chunk(definition, [(uuid.uuid4().hex, tuple(args)) for args in chunk])
    for args, kwargs in calls:
        if kwargs:
            check_json(definition, args, kwargs)
            out.append(_enqueue_now(definition, args, kwargs, uuid.uuid4().hex, None))
    return out


def enqueue_batch_rollback_unsafe(items: Sequence[tuple[JobDefinition[Any, Any], Sequence[Any], str]]) -> None:
    """Enqueue ``(definition, args, job_id)`` items now, in one Redis round trip.

    Ignores any surrounding transaction on purpose: for callers (the outbox
    relay) that must enqueue *before* they commit and whose consumers
    de-duplicate (a commit that fails after this leads to a second enqueue).
    Unique locks are not taken here.
    """
    by_queue: dict[str, list[Any]] = {}
    for definition, args, job_id in items:
        check_json(definition, args, {})
        physical = physical_queue(definition.queue)
        by_queue.setdefault(physical, []).append(
            Queue.prepare_data(
                definition.name, args=list(args), kwargs={}, **_job_options(definition, job_id, physical)
            )
        )
    if not by_queue:
        return
    first = get_queue(next(iter(by_queue)))
    with first.connection.pipeline() as pipe:
        for name, datas in by_queue.items():
            get_queue(name).enqueue_many(datas, pipeline=pipe)
        pipe.execute()
