"""One job on VitoWorker, through RQ's per-job methods.

``BaseWorker.perform_job`` is RQ's own and stays ours: it calls
``prepare_job_execution``, runs ``job.perform()`` under the death penalty and
ends in ``_finalize_success`` or ``_finalize_failure``, and those are what this
class overrides. Why not a ``perform_job`` of our own: Sentry's and
OpenTelemetry's RQ integrations wrap ``BaseWorker.perform_job`` and
``BaseWorker.handle_exception``, and a method of the same name here would hide
their wrappers, so a failing job would never reach them. RQ's body costs no
Redis command; the commands are all in the hooks below.

What a job gets here, in RQ's order: its success callback before its result is
stored (a failing one fails the job, as in RQ), its failure callback on every
failed attempt, then ``handle_exception`` (RQ's log line and the
``push_exc_handler`` stack), then the settling: a retry, or the ledger.
docs/rq-contract.md.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from django.db import InterfaceError, OperationalError, close_old_connections
from rq import Queue
from rq.callbacks import execute_failure_callback, execute_stopped_callback, execute_success_callback
from rq.job import Job, JobStatus, Retry
from rq.rate_limit import release_slot
from rq.repeat import Repeat
from rq.results import Result
from rq.utils import now, utcformat
from rq.worker import SimpleWorker, WorkerStatus

from queueing import claims, dependents, recent, scripts, unique
from queueing.definitions import Backoff, JobDefinition, PermanentError, definition_for
from queueing.failures import Failure, apply_worker_defaults, settle
from queueing.middleware import JobContext, Release, run_with_middleware
from queueing.task_backend import runner
from queueing.worker import penalty
from queueing.worker.commands import StopCommands

log = logging.getLogger("queueing.worker")

DEFAULT_TIMEOUT = 180


class JobStopped(Exception):
    """Raised inside a job by RQ's stop-job command (django-rq's Stop button) or kill-horse."""


JOB_STOPPED = penalty.with_message(JobStopped, "job stopped by request (RQ stop-job or kill-horse command)")


class UnsupportedRQFeature(Exception):
    """A job asked for an RQ behaviour this worker does not run: it fails, saying so."""


ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


class WorkerJob(Job):
    """A job as the worker runs it: its definition's middleware wraps the call,
    and a Django task is called the framework's way (queueing/task_backend/runner.py).

    RQ's ``perform_job`` calls ``job.perform()``; the middleware (rate limits,
    overlap locks, tenant context) must run inside it, under the same timeout.
    """

    definition: JobDefinition[Any, Any] | None = None

    def _execute(self) -> Any:
        # RQ's _execute, resolving the function once (RQ's ``func`` imports it on every access).
        func = self.func
        if func is None:
            raise ValueError("Cannot execute job: function is None")
        if runner.is_task(func):  # a Django task (django.tasks): Task.call, context, signals
            return runner.run(self, func)
        result = func(*self.args, **self.kwargs)
        if asyncio.iscoroutine(result):
            return asyncio.run(result)
        return result

    def perform(self) -> Any:
        definition = self.definition
        if definition is None or not definition.middleware:
            return super().perform()
        ctx = JobContext(self.id, definition.name, tuple(self.args), dict(self.kwargs), self.connection)
        return run_with_middleware(tuple(definition.middleware), ctx, super().perform)


@dataclass
class InHand:
    """The job being run: what RQ's method signatures do not carry."""

    queue: Queue
    member: str  # the claim (queueing/claims.py)
    started: float  # monotonic
    wait_s: float | None  # enqueued → claimed
    timeout: float | None  # the job's own field, restored before anything saves the job
    job_id: str = ""
    finalizing: bool = False  # from here a stop command no longer interrupts (the job has ended)
    interrupt: bool = False  # a stop command asked to interrupt this job (main thread: by signal)
    stop_requested: bool = False  # RQ's stop-job: settled as STOPPED, never retried
    bookkeeping_error: BaseException | None = None


class ExecutingWorker(StopCommands, SimpleWorker):
    """RQ's per-job methods over our claim, ledger and one-round-trip success."""

    default_tries: int
    default_backoff: Backoff
    default_job_timeout: int | None
    jobs_done: int
    threaded: bool  # jobs run in job threads (--concurrency > 1), not in the main thread
    _beat: claims.Heartbeat
    _in_job: bool
    _database_suspect: bool
    _counting: threading.Lock

    def run_claimed(self, job: WorkerJob, queue: Queue, member: str, wait_s: float | None) -> None:
        """Run one claimed job to its end: succeeded, retried, failed, or released."""
        definition = definition_for(job.func_name or "")
        if definition is not None and job.func_name != definition.name:
            job.func_name = definition.name  # queued before the job moved (``@job(formerly=...)``)
        job.definition = definition
        self._hands[job.id] = hand = InHand(queue, member, time.monotonic(), wait_s, job.timeout, job.id)
        # RQ's perform_job reads the timeout off the job: the job's own declaration
        # wins, then the worker's --timeout, then the queue default (the job's field).
        effective = (definition.timeout if definition else None) or self.default_job_timeout or job.timeout
        job.timeout = int(effective or DEFAULT_TIMEOUT)
        self._state = WorkerStatus.BUSY
        try:
            self.perform_job(job, queue, None)  # type: ignore[arg-type]  # no rq Execution: our claim is it
        finally:
            self._hands.pop(job.id, None)
            self._in_job = bool(self._hands)
            self._beat.release(member)
            if not self._hands:
                self._state = WorkerStatus.IDLE
            with self._counting:
                self.jobs_done += 1
            close_old_connections()
        if hand.bookkeeping_error is not None:
            # Redis failed while recording a success: the claim is still held, so the
            # reaper settles it; the loop backs off. Not a job failure (it ran).
            raise hand.bookkeeping_error

    # ------------------------------------------------------------------ RQ's hooks

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """RQ writes the started state here (~10 commands); the claim script already did."""
        self._in_job = True  # from here a second signal interrupts the job (settled below)
        close_old_connections()  # a PostgreSQL restart must not break the next job
        definition = getattr(job, "definition", None)
        if definition is not None and definition.is_unique and definition.unique_until_processing:
            unique.release(self.connection, lock_key=definition.unique_lock_key(job.args, job.kwargs), job_id=job.id)

    def _finalize_success(self, job: Job, queue: Queue, execution: Any, return_value: Any) -> None:
        hand = self._require_hand(job)
        hand.finalizing = True
        if self.threaded:
            penalty.leave_thread()  # nothing fires into the settling code
        if isinstance(return_value, Retry):
            # Raised here, so RQ's perform_job settles it as this job's failure, with the reason.
            raise UnsupportedRQFeature(
                "returning rq.Retry from a job is not supported on VitoWorker: raise an exception instead, "
                "and give the job tries (@job(tries=...) or enqueue(..., retry=Retry(max=...)))"
            )
        job._result = return_value
        job._status = JobStatus.FINISHED
        # Outside the guard below: a success callback that raises fails the job, as in RQ.
        execute_success_callback(job, self.death_penalty_class, return_value)
        try:
            self._record_success(job, hand, getattr(job, "definition", None), return_value)
            self._after_success(job, hand)
        except Exception as exc:  # not the job's failure: see run_claimed
            hand.bookkeeping_error = exc

    def _finalize_failure(self, job: Job, queue: Queue, execution: Any, exc_info: ExcInfo) -> None:
        hand = self._require_hand(job)
        hand.finalizing = True
        if self.threaded:
            penalty.leave_thread()  # nothing fires into the settling code
        exc = exc_info[1]
        assert exc is not None
        if isinstance(exc, Release):
            self._release(job, hand, exc)
            return
        if hand.stop_requested or self._stopped_job_id == job.id:
            self._settle_stopped(job, hand, exc_info)
            return
        # Checked before the next claim (loop._database_away, which clears it); the
        # job's own fate follows its policy. Only ever set here: a sibling thread's
        # ordinary failure must not clear it.
        if isinstance(exc, OperationalError | InterfaceError):
            self._database_suspect = True
        job.timeout = hand.timeout
        definition: JobDefinition[Any, Any] | None = getattr(job, "definition", None)
        apply_worker_defaults(job, self.default_tries, self.default_backoff)
        permanent = isinstance(exc, definition.permanent if definition else (PermanentError,))
        job._status = JobStatus.FAILED
        try:
            execute_failure_callback(job, self.death_penalty_class, *exc_info)
        except Exception:
            exc_info = sys.exc_info()  # a failing callback replaces the job's exception, as in RQ
        self._report(job, permanent, exc_info)
        self._record_failure(job, hand, definition, exc_info, permanent)
        if isinstance(exc, SystemExit | KeyboardInterrupt):
            raise exc

    def _settle_stopped(self, job: Job, hand: InHand, exc_info: ExcInfo) -> None:
        """As RQ settles a stopped job: its stopped callback, then failed, never retried, status STOPPED."""
        self._stopped_job_id = None
        job.timeout = hand.timeout
        log.warning("worker %s: job %s stopped by request", self.name, job.id)
        try:
            execute_stopped_callback(job, self.death_penalty_class)
        except Exception:
            log.exception("worker %s: the stopped callback of %s raised", self.name, job.id)
        self._record_failure(job, hand, getattr(job, "definition", None), exc_info, True, JobStatus.STOPPED)

    # ------------------------------------------------------------------ our settling

    def _state_after(self, job: Job) -> dict[Any, Any]:
        """The worker hash's state once ``job`` has ended: busy with a sibling still
        in hand (RQ's ``current_job`` names one job; rqinfo and the admin read it)."""
        sibling = next((job_id for job_id in list(self._hands) if job_id != job.id), None)
        if sibling is None:
            return {"state": WorkerStatus.IDLE, "current_job": ""}
        return {"state": WorkerStatus.BUSY, "current_job": sibling}

    def _require_hand(self, job: Job) -> InHand:
        hand = self._hands.get(job.id)
        if hand is None:
            raise RuntimeError("RQ's perform_job called outside run_claimed: jobs are claimed by the worker's loop")
        return hand

    def _report(self, job: Job, permanent: bool, exc_info: ExcInfo) -> None:
        """``handle_exception``, as RQ calls it, seeing whether this attempt is the last.

        What hooks it (Sentry) reads ``retries_left``: a permanent error is the
        last attempt whatever is left, so it reads 0 for the length of the call.
        """
        retries_left = job.retries_left
        if permanent:
            job.retries_left = 0
        try:
            self.handle_exception(job, *exc_info)
        except Exception:
            log.exception("worker %s: an exception handler raised for %s", self.name, job.id)
        finally:
            job.retries_left = retries_left

    def _record_success(self, job: Job, hand: InHand, definition: JobDefinition[Any, Any] | None, result: Any) -> None:
        """One round trip: unclaim, status, result, worker counters, the recent list."""
        elapsed = time.monotonic() - hand.started
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline(transaction=False) as pipe:
            claims.unclaim(pipe, hand.queue, hand.member)
            if result_ttl == 0:
                pipe.delete(job.key)
            else:
                pipe.hset(job.key, mapping={"status": JobStatus.FINISHED, "ended_at": utcformat(now())})
                if result_ttl and result_ttl > 0:
                    pipe.expire(job.key, result_ttl)
                    pipe.zadd(hand.queue.finished_job_registry.key, {job.id: time.time() + result_ttl})
                # Kept for job.latest_result() / return_value() and django-rq's job page;
                # written for None too, as RQ does (code polls latest_result() for the outcome).
                Result.create(job, Result.Type.SUCCESSFUL, result_ttl, return_value=result, pipeline=pipe)
            pipe.hset(self.key, mapping=self._state_after(job))
            pipe.hincrby(self.key, "successful_job_count", 1)
            pipe.hincrbyfloat(self.key, "total_working_time", elapsed)
            recent.record_attempt(pipe, job, hand.queue, definition, elapsed, wait_s=hand.wait_s, failed=False)
            if definition is not None and definition.is_unique and not definition.unique_until_processing:
                scripts.release_in(pipe, definition.unique_lock_key(job.args, job.kwargs), job.id)
            pipe.smembers(job.dependents_key)  # read after the status is written: see dependents.py
            has_dependents = bool(pipe.execute()[-1])
        log.info("%s %s done in %.1f ms", job.func_name, job.id, elapsed * 1000)
        if has_dependents:
            dependents.release(hand.queue, job)

    def _after_success(self, job: Job, hand: InHand) -> None:
        """RQ's ``Repeat`` (the job goes back on its queue, or is scheduled) and its
        rate-limit slot (freed, and the next waiting job pushed); no command for other jobs."""
        if job.repeats_left is not None and job.repeats_left > 0:
            job.timeout = hand.timeout  # Repeat saves the job: its own timeout, not the effective one
            Repeat.schedule(job, hand.queue)
        if job.has_rate_limit:
            release_slot(job)  # kept (RQ's rule) while the job is queued again for an immediate repeat

    def _record_failure(
        self,
        job: Job,
        hand: InHand,
        definition: JobDefinition[Any, Any] | None,
        exc_info: ExcInfo,
        permanent: bool,
        status: JobStatus = JobStatus.FAILED,
    ) -> None:
        exc = exc_info[1]
        assert exc is not None
        failure = Failure(
            exception_class=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=str(exc) or type(exc).__name__,
            traceback="".join(traceback.format_exception(exc)),
            exception=exc,
        )
        try:  # bookkeeping only: it must never stand between a failure and its settling
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.hset(self.key, mapping=self._state_after(job))
                pipe.hincrby(self.key, "failed_job_count", 1)
                recent.record_attempt(
                    pipe, job, hand.queue, definition, time.monotonic() - hand.started, wait_s=hand.wait_s, failed=True
                )
                pipe.execute()
        except Exception:
            log.warning("worker %s: could not record the failure of %s in Redis", self.name, job.id, exc_info=True)
        queue, member = hand.queue, hand.member
        settle(
            job=job,
            queue=queue,
            member=member,
            failure=failure,
            worker_name=self.name,
            permanent=permanent,
            status=status,
        )

    def _release(self, job: Job, hand: InHand, release: Release) -> None:
        """Back on the queue later, attempt not used up (middleware said "not now")."""
        job.timeout = hand.timeout
        with self.connection.pipeline() as pipe:  # MULTI: back in the schedule, or still claimed
            claims.unclaim(pipe, hand.queue, hand.member)
            hand.queue.schedule_job(job, now() + timedelta(seconds=release.delay), pipeline=pipe)
            pipe.execute()
        log.info("%s %s %s", job.func_name, job.id, release)
