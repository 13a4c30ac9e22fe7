"""Dispatching: the relay moves due messages onto the queues (claim, one
Redis round trip, mark, commit), several messages per job where their routes
allow; redispatch sends messages again. docs/outbox.md."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from outbox.job_ids import batch_job_id, delivery_job_ids
from outbox.models import OutboxMessage
from outbox.routes import Route, routes_for
from outbox.services.batches import Delivery, Policy
from outbox.services.publishing import notify

log = logging.getLogger(__name__)

Status = OutboxMessage.Status


@dataclass
class _Plan:
    """One pass's jobs: what to enqueue, and each routed message's recorded job id."""

    items: list[tuple[Any, tuple[Any, ...], str]] = field(default_factory=list)
    job_ids: dict[int, str] = field(default_factory=dict)  # message id → the job carrying route 0
    unrouted: list[int] = field(default_factory=list)
    _variants: dict[tuple[str, str, int | None, int | None], Any] = field(default_factory=dict)

    def variant(self, kind: str, r: Route) -> Any:
        """One job definition per (kind, queue, timeout, tries) a route asks for."""
        from outbox.jobs import deliver, deliver_batch

        key = (kind, r.queue, r.timeout, r.tries)
        if key not in self._variants:
            if kind == "single":
                self._variants[key] = deliver.with_options(queue=r.queue, timeout=r.timeout, tries=r.tries)
            else:
                self._variants[key] = deliver_batch.with_options(
                    queue=r.queue, timeout=_policy(r).batch_timeout
                )  # fmt: skip
        return self._variants[key]


def _policy(r: Route) -> Policy:
    from outbox.jobs import DELIVER_TIMEOUT, deliver

    return Policy(queue=r.queue, timeout=r.timeout or DELIVER_TIMEOUT, tries=r.tries or deliver.tries or 1)


# Batches only where there is a backlog: the relay is behind (its claim came
# back full, more are waiting) or the workers are (this many jobs wait on the
# target queue). Otherwise a job per message: the lowest latency, every
# worker thread on the burst, and the path that needs no batch bookkeeping.
BACKLOG_JOBS = 100


def _backlogs(queues: set[str]) -> dict[str, int]:
    """Jobs waiting on each logical queue's physical queue (one round trip)."""
    from queueing.dispatch import get_queue, redis_connection
    from queueing.topology import physical_queue

    names = sorted(queues)
    with redis_connection().pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(get_queue(physical_queue(name)).key)
        return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))


def _plan(rows: Sequence[tuple[int, str, int]], per_job: int, *, behind: bool) -> _Plan:
    """Group the claimed messages into delivery jobs.

    Messages go together when their event types have the same routes (handler,
    queue, timeout, tries, batch, in order): for the usual single route that is "per
    queue and handler"; for a fan-out it keeps the batches of every route of a
    chunk identical, which is what lets a message record one job id for all
    of them (outbox/job_ids.py). They are batched when the relay is ``behind``
    or a route's queue has a backlog (BACKLOG_JOBS); a chunk of one is the
    message's own job, exactly as with batching off.
    """
    plan = _Plan()
    groups: dict[tuple[tuple[Any, ...], ...], tuple[list[Route], list[Delivery]]] = {}
    by_type: dict[str, tuple[list[Route], list[Delivery]] | None] = {}  # each event type's group, looked up once
    for message_id, event_type, attempts in rows:
        if event_type not in by_type:
            routes = routes_for(event_type)
            key = tuple(r.delivery for r in routes)
            by_type[event_type] = groups.setdefault(key, (routes, [])) if routes else None
        group = by_type[event_type]
        if group is None:
            plan.unrouted.append(message_id)
        else:
            group[1].append((message_id, attempts + 1))
    backlog: dict[str, int] = {}
    if per_job > 1 and not behind:
        backlog = _backlogs({r.queue for routes, found in groups.values() if len(found) > 1 for r in routes})
    for routes, deliveries in groups.values():
        size = 1
        if behind or any(backlog.get(r.queue, 0) >= BACKLOG_JOBS for r in routes):
            size = max(1, min(r.batch or per_job for r in routes))
        for start in range(0, len(deliveries), size):
            chunk = deliveries[start : start + size]
            (head, head_attempt), more = chunk[0], [[m, a] for m, a in chunk[1:]]
            if not more:
                ids = delivery_job_ids(head, head_attempt, len(routes))
                for n, r in enumerate(routes):
                    plan.items.append((plan.variant("single", r), (head, r.handler, head_attempt), ids[n]))
                plan.job_ids[head] = ids[0]
                continue
            token = secrets.token_hex(6)
            for n, r in enumerate(routes):
                args = (head, r.handler, head_attempt, more, n, _policy(r).as_json())
                plan.items.append((plan.variant("batch", r), args, batch_job_id(head, token, n)))
            recorded = batch_job_id(head, token, 0)
            for message_id, _ in chunk:
                plan.job_ids[message_id] = recorded
    return plan


def outbox_relay_pass(*, batch_size: int = 500, per_job: int | None = None) -> int:
    """Claim up to ``batch_size`` due messages, enqueue their delivery jobs in
    one Redis round trip, mark them dispatched, commit. Returns how many.

    ``per_job`` (default ``OUTBOX_MESSAGES_PER_JOB``) is how many messages one
    job may carry when there is a backlog (``_plan``; 1: a job per message and
    handler); a route's ``batch`` lowers it for that route. SKIP LOCKED lets
    any number of relays run: each claims rows the others have not. A crash
    after the enqueue rolls the marking back, so the next pass enqueues again;
    the inbox makes the second delivery a no-op.
    """
    from queueing.dispatch import enqueue_batch_rollback_unsafe

    per_job = per_job or settings.OUTBOX_MESSAGES_PER_JOB
    with transaction.atomic():
        rows = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, available_at__lte=timezone.now())
            .order_by("available_at", "id")
            .values_list("id", "event_type", "attempts")[:batch_size]
        )
        if not rows:
            return 0
        plan = _plan(rows, per_job, behind=len(rows) >= batch_size)
        enqueue_batch_rollback_unsafe(plan.items)
        # (chaos/faults.py kills a relay right here, around enqueue_batch_rollback_unsafe, to prove the rollback.)
        if plan.job_ids:
            # One statement for the whole pass: each row gets its job's id, sent
            # once per job (an index per row) — a batch's fifty rows share one.
            distinct = list(dict.fromkeys(plan.job_ids.values()))
            position = {job_id: n for n, job_id in enumerate(distinct, start=1)}
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE outbox_outboxmessage AS m SET status = %s, dispatched_at = %s,"
                    " attempts = m.attempts + 1, job_id = (%s::text[])[d.k]"
                    " FROM unnest(%s::bigint[], %s::int[]) AS d(id, k) WHERE m.id = d.id",
                    [Status.DISPATCHED.value, timezone.now(), distinct, list(plan.job_ids),
                     [position[j] for j in plan.job_ids.values()]],
                )  # fmt: skip
        if plan.unrouted:
            # Nobody listens (yet). Not "processed": a relay running older code
            # during a deploy must not swallow events; replay delivers them later.
            OutboxMessage.objects.filter(pk__in=plan.unrouted).update(status=Status.SKIPPED)
    return len(rows)


def outbox_relay_drain(*, batch_size: int = 500, per_job: int | None = None) -> int:
    """Passes until a pass finds less than a full batch."""
    total = 0
    while True:
        moved = outbox_relay_pass(batch_size=batch_size, per_job=per_job)
        total += moved
        if moved < batch_size:
            return total


def outbox_redispatch(*, ids: Sequence[int]) -> int:
    """Send dispatched or dead messages again (an operator's choice): back to
    pending; the relay takes them. Pending ones are the relay's already."""
    with transaction.atomic():
        count = OutboxMessage.objects.filter(
            pk__in=list(ids), status__in=[Status.DISPATCHED, Status.DEAD, Status.SKIPPED]
        ).update(status=Status.PENDING)
        notify()
    return count


def outbox_redispatch_lost(*, seen: Sequence[OutboxMessage]) -> int:
    """The coroner's repair: only rows still exactly as it saw them (same
    dispatch, still dispatched) go back to pending; anything that moved on
    meanwhile — delivered, died, redispatched — is left alone."""
    count = 0
    with transaction.atomic():
        for message in seen:
            count += OutboxMessage.objects.filter(
                pk=message.pk, status=Status.DISPATCHED, attempts=message.attempts
            ).update(status=Status.PENDING)
        notify()
    return count
