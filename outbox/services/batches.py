"""Batch delivery: one job carries several messages for one handler, and each
message keeps what a job of its own would give it. docs/outbox.md, "Batches".

- Each message is delivered exactly as ``outbox_deliver`` delivers it alone:
  its own transaction, inbox row and completion, so a failure rolls back that
  message only and a message delivered twice is handled once.
- A message whose handler raises is retried *alone*: a ``deliver`` job with
  the id its own job would have had (the coroner finds it), scheduled after
  the route's first backoff delay, carrying the tries that are left — the
  batch was its first. A permanent error, or a route of one try, fails it
  finally right here: one ledger row (under that same job id) and ``dead``.
- The batch starts a message only while that message's whole timeout still
  fits in the batch's; the rest, and everything after a timeout or a stop,
  go on in jobs of their own with all their tries.
- PostgreSQL going away is not a message's failure: the batch job fails, so
  the worker waits for the database and runs it again, skipping (the inbox)
  what it delivered. If the batch job fails finally (its worker killed again
  and again, the database away for long), its failure hook hands every
  message it had not delivered to a job of its own (``outbox.jobs``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction
from rq import Retry, get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from outbox.job_ids import single_job_id
from outbox.jobs import BATCH_TIMEOUT_FACTOR, deliver
from outbox.models import InboxEntry, OutboxMessage
from outbox.routes import current_handler, handler_names
from outbox.services.delivery import outbox_deliver, outbox_mark_dead
from queueing.definitions import backoff_delays
from queueing.topology import physical_queue

log = logging.getLogger(__name__)

Status = OutboxMessage.Status
Delivery = tuple[int, int]  # (message id, the dispatch it belongs to)


@dataclass(frozen=True)
class Policy:
    """One route's per-message delivery policy, as a batch job carries it (JSON)."""

    queue: str  # logical
    timeout: int  # seconds for one message
    tries: int  # attempts in total for one message

    @property
    def batch_timeout(self) -> int:
        return BATCH_TIMEOUT_FACTOR * self.timeout

    def as_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "timeout": self.timeout, "tries": self.tries}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        return cls(queue=str(data["queue"]), timeout=int(data["timeout"]), tries=int(data["tries"]))


@dataclass
class BatchReport:
    delivered: int = 0  # the handler ran and committed
    skipped: int = 0  # handled before (the inbox), or the message is gone
    retrying: list[int] = field(default_factory=list)  # failed here; retried alone
    dead: list[int] = field(default_factory=list)  # failed here for good: ledger row, dead
    handed_on: list[int] = field(default_factory=list)  # not run here; in jobs of their own now

    def as_json(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "skipped": self.skipped,
            "retrying": len(self.retrying),
            "dead": len(self.dead),
            "handed_on": len(self.handed_on),
        }


def outbox_deliver_batch(
    *,
    deliveries: Sequence[Delivery],
    handler: str,
    index: int,
    policy: Policy,
    clock: Callable[[], float] = time.monotonic,
) -> BatchReport:
    """Deliver each message to ``handler`` (route ``index`` of its event) in
    turn, each as it would be delivered alone; see the module docstring."""
    report = BatchReport()
    started = clock()
    for position, (message_id, attempt) in enumerate(deliveries):
        if position and clock() - started + policy.timeout > policy.batch_timeout:
            report.handed_on = outbox_hand_on(
                deliveries=deliveries[position:], handler=handler, index=index, policy=policy
            )
            break
        try:
            if outbox_deliver(message_id=message_id, handler=handler, attempt=attempt):
                report.delivered += 1
            else:
                report.skipped += 1
        except Exception as exc:  # this message's failure; its siblings are not concerned
            if _database_away(exc):
                # Not the message's fault: fail the batch job, so the worker waits for the
                # database and runs it again (tries=3); the inbox skips what is done.
                raise
            interrupted, stopped = _interruption(exc)
            dead = _failed(
                message_id=message_id, attempt=attempt, handler=handler, index=index, policy=policy, exc=exc,
                permanent=stopped,
            )  # fmt: skip
            (report.dead if dead else report.retrying).append(message_id)
            if interrupted:
                # The worker stopped this job (timeout, stop command): what is left goes on alone.
                report.handed_on = outbox_hand_on(
                    deliveries=deliveries[position + 1 :], handler=handler, index=index, policy=policy
                )
                break
    return report


def outbox_hand_on(*, deliveries: Sequence[Delivery], handler: str, index: int, policy: Policy) -> list[int]:
    """Put each message a batch did not deliver into a job of its own (all its
    tries, queued now) — those still at that dispatch, not yet handled, and
    without such a job already (a retry the batch scheduled on an earlier run).
    Returns their ids. Used for what a batch has no time left for, and by the
    batch job's failure hook."""
    from queueing.dispatch import enqueue_batch_rollback_unsafe, redis_connection

    if not deliveries:
        return []
    ids = [message_id for message_id, _ in deliveries]
    handled = set(
        InboxEntry.objects.filter(message_id__in=ids, handler__in=handler_names(current_handler(handler))).values_list(
            "message_id", flat=True
        )
    )
    current = set(OutboxMessage.objects.filter(pk__in=ids, status=Status.DISPATCHED).values_list("pk", "attempts"))
    wanted = [(m, a) for m, a in deliveries if m not in handled and (m, a) in current]
    if not wanted:
        return []
    with redis_connection().pipeline(transaction=False) as pipe:
        for message_id, attempt in wanted:
            pipe.exists(Job.key_for(single_job_id(message_id, attempt, index)))
        exists = pipe.execute()
    wanted = [delivery for delivery, found in zip(wanted, exists, strict=True) if not found]
    variant = deliver.with_options(queue=policy.queue, timeout=policy.timeout, tries=policy.tries)
    enqueue_batch_rollback_unsafe(
        [(variant, (m, handler, a), single_job_id(m, a, index)) for m, a in wanted]
    )  # fmt: skip
    if wanted:
        log.info("outbox batch for %s: %d message(s) handed on to jobs of their own", handler, len(wanted))
    return [m for m, _ in wanted]


def _database_away(exc: Exception) -> bool:
    """Whether ``exc`` came from PostgreSQL being unreachable (a restart, a
    failover), as opposed to this message's own statement failing (a lock or
    statement timeout, a constraint), which is the message's failure."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    close_old_connections()  # drops a broken connection, so the probe opens a new one
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return True
    return False


def _interruption(exc: BaseException) -> tuple[bool, bool]:
    """(the worker interrupted this job, it did so by a stop command).

    A timeout or a stop is the job's, not the message's: the message in hand
    takes it as its own job would (a timeout is retried, a stop is final), and
    the batch ends there."""
    if isinstance(exc, JobTimeoutException):
        return True, False
    from queueing.worker.execution import JobStopped

    stopped = isinstance(exc, JobStopped)
    return stopped, stopped


def _failed(
    *, message_id: int, attempt: int, handler: str, index: int, policy: Policy, exc: Exception, permanent: bool
) -> bool:
    """Settle one message's failed first try; True when it is now dead."""
    if permanent or isinstance(exc, deliver.permanent) or policy.tries <= 1:
        _fail_finally(message_id=message_id, attempt=attempt, handler=handler, index=index, policy=policy, exc=exc)
        return True
    delay = _retry_alone(message_id=message_id, attempt=attempt, handler=handler, index=index, policy=policy)
    log.warning(
        "outbox message %s: %s failed in a batch (%s: %s); retried alone in %ss, %d attempt(s) left",
        message_id, handler, type(exc).__name__, str(exc)[:200], delay, policy.tries - 1,
    )  # fmt: skip
    return False


def _retry_alone(*, message_id: int, attempt: int, handler: str, index: int, policy: Policy) -> int:
    """Schedule the message's own ``deliver`` job as its second attempt: the
    job its single dispatch would have been after one failure — same id, the
    route's timeout, the rest of the backoff, ``tries`` counted from the batch.
    Returns the delay in seconds."""
    from queueing.dispatch import FAILURE_TTL, get_queue

    delays = backoff_delays(deliver.backoff, policy.tries - 1)  # one per retry: the first is this one
    queue = get_queue(physical_queue(policy.queue))
    job = queue.create_job(
        deliver.name,
        args=[message_id, handler, attempt],
        timeout=policy.timeout,
        result_ttl=deliver.result_ttl,
        failure_ttl=FAILURE_TTL,
        job_id=single_job_id(message_id, attempt, index),
        # retries_left counts from here: the worker's ledger then reads the
        # attempt number (tries - retries left) as the message's own.
        retry=Retry(max=len(delays) - 1, interval=delays[1:]) if len(delays) > 1 else None,
        meta={"tries": policy.tries},
    )
    queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=delays[0]))
    return delays[0]


def _fail_finally(*, message_id: int, attempt: int, handler: str, index: int, policy: Policy, exc: Exception) -> None:
    """What the worker does when a message's own job fails finally: one ledger
    row (unique per job id: a batch run twice records it once) and, with it in
    one transaction, the message becomes dead."""
    from queueing.services import FailureRecord, failed_job_record

    current = get_current_job()
    record = FailureRecord(
        job_id=single_job_id(message_id, attempt, index),
        queue=physical_queue(policy.queue),
        job_name=deliver.name,  # queue_retry sends the message alone, with fresh tries
        args=[message_id, handler, attempt],
        kwargs={},
        exception_class=f"{type(exc).__module__}.{type(exc).__qualname__}",
        message=str(exc) or type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)),
        attempts=1,
        worker=str(getattr(current, "worker_name", "") or ""),
        tenant_id=None,  # as for the message's own job: deliver takes no tenant argument
    )
    with transaction.atomic():
        _row, created = failed_job_record(record=record)
        if created:
            outbox_mark_dead(message_id=message_id, error=f"{handler}: {type(exc).__name__}: {exc}")
    log.error("outbox message %s: %s failed in a batch for good: %s: %s", message_id, handler, type(exc).__name__, exc)
