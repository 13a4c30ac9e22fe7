"""The jobs the relay enqueues — deliver one message to one handler, or
several (a batch) — and the outbox's periodic jobs. docs/outbox.md."""

from __future__ import annotations

from typing import Any

from queueing.definitions import Exponential, job

DELIVER_TIMEOUT = 300
# A batch job may run for twice one message's timeout. It starts a message
# only while that message's whole timeout still fits, so every handler gets as
# long as in a job of its own, and a batch never holds a worker (or a deploy's
# drain) longer than two messages' worth; what does not fit goes on alone.
BATCH_TIMEOUT_FACTOR = 2


def _dead(exc: BaseException, message_id: int, handler: str, *_: object, **__: object) -> None:
    from outbox.services import outbox_mark_dead

    outbox_mark_dead(message_id=message_id, error=f"{handler}: {type(exc).__name__}: {exc}")


@job(tries=5, backoff=Exponential(base=5, cap=300), timeout=DELIVER_TIMEOUT, on_failure=_dead)
def deliver(message_id: int, handler: str, attempt: int | None = None) -> None:
    """Run ``handler`` for outbox message ``message_id`` once (the inbox de-duplicates).

    Retries follow the job's policy; when they run out the message becomes
    dead and the failure is in the failed-job ledger.
    """
    from outbox.services import outbox_deliver

    outbox_deliver(message_id=message_id, handler=handler, attempt=attempt)


def _batch_failed(
    exc: BaseException,
    message_id: int,
    handler: str,
    attempt: int,
    more: list[list[int]],
    index: int,
    policy: dict[str, Any],
    *_: object,
    **__: object,
) -> None:
    """The batch job failed for good: what it had not delivered goes on alone."""
    from outbox.services import Policy, outbox_hand_on

    deliveries = [(message_id, attempt), *((int(m), int(a)) for m, a in more)]
    outbox_hand_on(deliveries=deliveries, handler=handler, index=index, policy=Policy.from_json(policy))


# Three tries, 5 and 10 s apart: a batch whose worker died (a deploy's cold
# stop, the OOM killer) or that met PostgreSQL restarting runs again, the
# inbox skipping what it delivered; failing for good, its messages go on in
# jobs of their own (the hook), so a message that kills its worker ends up
# alone instead of with its siblings. A handler's own failures are the
# message's (outbox.services.batches), never the batch's.
@job(
    tries=3,
    backoff=Exponential(base=5, cap=60),
    timeout=BATCH_TIMEOUT_FACTOR * DELIVER_TIMEOUT,
    on_failure=_batch_failed,
)
def deliver_batch(
    message_id: int, handler: str, attempt: int, more: list[list[int]], index: int, policy: dict[str, Any]
) -> dict[str, int]:
    """Deliver several messages to ``handler``, each as ``deliver`` would alone.

    The first three arguments are the first message's, as ``deliver`` takes
    them (so what reads ``args[0]`` as the message sees the batch's first);
    ``more`` holds the others as ``[message_id, attempt]``; ``index`` is the
    route's position among its event's routes; ``policy`` the route's
    per-message queue, timeout and tries (outbox.services.batches.Policy).
    """
    from outbox.services import Policy, outbox_deliver_batch

    deliveries = [(message_id, attempt), *((int(m), int(a)) for m, a in more)]
    report = outbox_deliver_batch(deliveries=deliveries, handler=handler, index=index, policy=Policy.from_json(policy))
    return report.as_json()


@job(timeout=600, unique_for=600)
def relay_safety_net() -> int:
    """The every-minute pass (``outbox:process``): moves anything the loop missed."""
    from outbox.services import outbox_relay_drain

    return outbox_relay_drain()


@job(timeout=600, unique_for=600)
def coroner() -> dict[str, int]:
    """Every 5 minutes: send lost messages again, drain long-pending ones; logs an error if any were stuck."""
    from outbox.services import outbox_coroner_run

    report = outbox_coroner_run(redispatch=True)
    return {"pending": len(report.pending), "lost": len(report.lost), "dead": len(report.dead)}


# Prune in slices of PRUNE_SLICE seconds, each its own job: a short timeout
# keeps the queue master's drain (the longest job timeout) short, and a slice
# cut by a deploy loses nothing (the next one carries on). The lock is freed
# when a slice starts so the slice can enqueue the next one.
PRUNE_SLICE = 240
PRUNE_BATCH = 1000  # rows per DELETE


@job(queue="maintenance", timeout=PRUNE_SLICE + 60, unique_for=3600, unique_until_processing=True)
def prune(days: int = 7, before: str | None = None) -> int:
    """Delete processed messages older than ``days``, a slice at a time (by hand; the
    nightly retention purge covers these rows too, see docs/retention.md).

    The first slice fixes the cutoff and hands it on (``before``), so the chain
    ends when that night's backlog is gone, however busy the outbox is meanwhile."""
    from datetime import datetime, timedelta

    from django.utils import timezone

    from outbox.services import outbox_prune, outbox_prune_left

    cutoff = datetime.fromisoformat(before) if before else timezone.now() - timedelta(days=days)
    deleted = outbox_prune(before=cutoff, budget=PRUNE_SLICE, batch_size=PRUNE_BATCH)
    if outbox_prune_left(before=cutoff):
        prune.dispatch(days, cutoff.isoformat())  # the next slice (jobs run in autocommit: enqueued now)
    return deleted
