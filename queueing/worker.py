"""VitoWorker: a long-lived, non-forking RQ worker (Laravel's ``queue:work``).

What it keeps from RQ: job and queue formats, worker registration (rqstats and
the admin see it), StartedJobRegistry / FailedJobRegistry / ScheduledJobRegistry,
Retry, signal semantics. What it does its own way, for speed and safety:

- one process runs job after job (no fork per job), with the per-job timeout
  enforced by SIGALRM and Django's DB connections checked around every job;
- a job is taken from the queues *and* claimed in one Lua call, in strict
  queue order, and its claim is kept alive by a heartbeat, so a kill at any
  instant never loses it (the claim protocol: queueing/claims.py);
- success costs one pipelined round trip (~6 commands), not RQ's ~50;
- pause/continue per queue, ``queue_restart``, ``--max-jobs``, ``--max-time``
  and ``--memory`` make it finish the job in hand and exit 0 for its supervisor.

docs/runtime.md, "The worker"."""

from __future__ import annotations

import logging
import signal
import time
import traceback
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection
from rq import Queue
from rq.exceptions import StopRequested
from rq.job import Job, JobStatus
from rq.results import Result
from rq.suspension import is_suspended
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty
from rq.utils import now, utcformat
from rq.worker import SimpleWorker, WorkerStatus

from lib.process import rss_mb, signals_deferred
from queueing import claims, keys, reaper, recent, scripts, unique
from queueing.claims import unclaim
from queueing.definitions import Backoff, JobDefinition, PermanentError, definition_for
from queueing.failures import Failure, apply_worker_defaults, settle
from queueing.middleware import JobContext, Release, run_with_middleware

log = logging.getLogger("queueing.worker")

MAINTENANCE_EVERY = 1.0  # seconds between promote/pause/restart checks
REAP_EVERY = 15.0
WORKER_TTL = 420
DEFAULT_TIMEOUT = 180


class VitoWorker(SimpleWorker):
    def __init__(
        self,
        queues: Sequence[Queue],
        *,
        sleep: float = 3,
        max_time: float | None = None,
        memory_mb: float | None = None,
        tries: int = 1,
        backoff: Backoff = None,
        timeout: int | None = None,
        borrow_max_timeout: int | None = None,
        all_queues: Sequence[Queue] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        super().__init__(list(queues), **kwargs)
        self.sleep = max(1, round(sleep))  # BLMOVE takes whole seconds here
        self.max_time = max_time
        self.memory_mb = memory_mb
        self.default_tries = tries
        self.default_backoff = backoff
        self.default_job_timeout = timeout
        self.borrow_max_timeout = borrow_max_timeout  # from later queues, only jobs this short
        self.reap_queues = list(all_queues) or list(self.queues)
        self.jobs_done = 0
        self.exit_reason = ""
        self._paused: set[str] = set()
        self._next_maintenance = 0.0
        self._next_reap = 0.0
        self._next_heartbeat = 0.0
        self._restart_mark: bytes | str = b""
        self._restart_flag = False
        self._beat = claims.Heartbeat(self.connection, self.key, self.worker_ttl)
        self._job_started = 0.0
        self._job_wait: float | None = None
        self._in_job = False
        self._database_suspect = False  # the last job failed on a dead PostgreSQL connection

    # ------------------------------------------------------------------ loop

    def work(  # type: ignore[override]
        self, burst: bool = False, logging_level: str | None = "INFO", max_jobs: int | None = None, **_: Any
    ) -> bool:
        self.bootstrap(logging_level)
        self.set_state(WorkerStatus.IDLE)  # RQ leaves "started" until its own dequeue, which we replace
        self._install_signal_handlers()  # type: ignore[no-untyped-call]
        self._restart_mark = self.connection.get(keys.RESTART_SIGNAL) or b""
        born = time.monotonic()
        self._beat.start()
        try:
            while not self._stop_requested:
                try:
                    self._maintain()
                    if self._should_exit(born, max_jobs):
                        break
                    if self._database_away():
                        if burst:  # a cron or CI run must end; the jobs stay queued
                            self.exit_reason = "burst: PostgreSQL unreachable, jobs left queued"
                            break
                        time.sleep(self.sleep)
                        continue
                    # No signal may land between taking a job and owning it.
                    with signals_deferred():
                        claimed = self._claim()
                    if claimed is None:
                        if burst and not self._has_due_scheduled():
                            self.exit_reason = "burst: queues empty"
                            break
                        self._wait_for_work(burst)
                        continue
                    self._perform(*claimed)
                except StopRequested:
                    break
                except (SystemExit, KeyboardInterrupt):
                    raise
                except Exception:
                    # Redis or PostgreSQL away for a moment: an unsettled claim
                    # is found by the reaper; this process waits and goes on.
                    log.exception("worker %s: loop error; retrying in %ss", self.name, self.sleep)
                    time.sleep(self.sleep)
        finally:
            self._beat.stop()
            self.teardown()  # type: ignore[no-untyped-call]
        log.info(
            "worker %s exiting after %d job(s): %s", self.name, self.jobs_done, self.exit_reason or "stop requested"
        )
        return self.jobs_done > 0

    def _should_exit(self, born: float, max_jobs: int | None) -> bool:
        if max_jobs is not None and self.jobs_done >= max_jobs:
            self.exit_reason = f"--max-jobs {max_jobs} reached"
        elif self.max_time is not None and time.monotonic() - born >= self.max_time:
            self.exit_reason = f"--max-time {self.max_time:g}s reached"
        elif self.memory_mb is not None and self.jobs_done and rss_mb() >= self.memory_mb:
            self.exit_reason = f"--memory {self.memory_mb:g} MB reached (RSS {rss_mb():.0f} MB)"
        elif self._restart_flag:
            self.exit_reason = "queue_restart signal"
        return bool(self.exit_reason)

    def _maintain(self, force: bool = False) -> None:
        """Once a second, not per job: pause set, restart signal, due scheduled jobs, reaping."""
        clock = time.monotonic()
        if not force and clock < self._next_maintenance:
            return
        self._next_maintenance = clock + MAINTENANCE_EVERY
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.PAUSED_QUEUES)
            pipe.get(keys.RESTART_SIGNAL)
            paused, restart = pipe.execute()
        self._paused = {p.decode() if isinstance(p, bytes) else str(p) for p in paused}
        if (restart or b"") != self._restart_mark:
            self._restart_flag = True
        self.promote_scheduled()
        if clock >= self._next_reap:
            self._next_reap = clock + REAP_EVERY
            reaper.reap(self.connection, self.reap_queues, worker_name=self.name)
        if clock >= self._next_heartbeat:
            self._next_heartbeat = clock + self.worker_ttl / 6
            with self.connection.pipeline(transaction=False) as pipe:
                self.heartbeat(pipeline=pipe)
                pipe.hset(self.key, "rss_mb", f"{rss_mb():.1f}")  # for the dashboard's worker list
                pipe.execute()

    def promote_scheduled(self) -> int:
        """Move due delayed/retried/released jobs onto their queues (atomic, so any number of promoters is safe)."""
        moved = 0
        stamp = time.time()
        for queue in self.queues:
            moved += scripts.promote(self.connection, queue.scheduled_job_registry.key, queue.key, stamp)
        return moved

    def _has_due_scheduled(self) -> bool:
        return self.promote_scheduled() > 0

    def _database_away(self) -> bool:
        """After a job failed on a dead database connection: is PostgreSQL still away?

        Why wait instead of taking the next job: nearly every job needs
        PostgreSQL, so while it restarts each job taken fails at once and the
        worker would run through the whole queue in seconds, spending an
        attempt of every job (outbox deliveries go dead after their fifth, a
        ``tries=1`` job straight into the ledger). Waiting costs nothing: the
        jobs stay queued, untouched, and run once the database answers. The
        check runs only after such a failure, never on the hot path.
        """
        if not self._database_suspect:
            return False
        try:
            connection.close()
            connection.ensure_connection()
        except DatabaseError as exc:
            log.warning("worker %s: PostgreSQL unreachable (%s); waiting before the next job", self.name, exc)
            return True
        self._database_suspect = False
        log.info("worker %s: PostgreSQL reachable again; taking jobs", self.name)
        return False

    def _active_queues(self) -> list[Queue]:
        if is_suspended(self.connection):
            return []
        return [q for q in self.queues if q.name not in self._paused]

    def _claim(self) -> tuple[Job, Queue, str] | None:
        started_at = now()
        claimed = claims.claim(
            self.connection,
            self._active_queues(),
            worker_name=self.name,
            started_at=started_at,
            borrow_max_timeout=self.borrow_max_timeout,
            own_first=self.queues[0].name,
        )
        if claimed is None:
            return None
        job = Job(claimed.job_id, connection=self.connection, serializer=self.serializer)
        job.restore(claimed.fields)
        enqueued = job.enqueued_at
        self._job_wait = (started_at - enqueued).total_seconds() if enqueued else None
        self._beat.hold(claimed.queue, claimed.member)  # the heartbeat keeps it alive from now
        return job, claimed.queue, claimed.member

    def _wait_for_work(self, burst: bool) -> None:
        """Block until the first active queue has a job, or ``--sleep`` passes.

        BLMOVE from a list onto itself takes nothing away: it only wakes us,
        so there is no instant at which a job is held by no one.
        """
        if burst:
            return
        active = self._active_queues()
        if not active:
            time.sleep(self.sleep)
            return
        key = active[0].key
        try:
            self.connection.blmove(key, key, self.sleep, "LEFT", "LEFT")
        except Exception as exc:  # redis down: back off, keep the process alive
            log.error("worker %s: Redis unavailable (%s); retrying in %ss", self.name, exc, self.sleep)
            time.sleep(self.sleep)

    # ------------------------------------------------------------------ one job

    def _perform(self, job: Job, queue: Queue, member: str) -> None:
        definition = definition_for(job.func_name or "")
        if definition is not None and job.func_name != definition.name:
            job.func_name = definition.name  # queued before the job moved (``@job(formerly=...)``)
        self._state = WorkerStatus.BUSY
        self._job_started = time.monotonic()
        try:
            self._in_job = True  # from here a second signal interrupts the job (settled below)
            close_old_connections()  # a PostgreSQL restart must not break the next job
            if definition is not None and definition.is_unique and definition.unique_until_processing:
                self._release_unique(definition, job)
            # The job's own declaration wins, then the worker's --timeout, then the queue default.
            timeout = (definition.timeout if definition else None) or self.default_job_timeout or job.timeout
            penalty = UnixSignalDeathPenalty(  # type: ignore[no-untyped-call]
                int(timeout or DEFAULT_TIMEOUT), JobTimeoutException, job_id=job.id
            )
            with penalty:
                if definition is not None and definition.middleware:
                    ctx = JobContext(job.id, definition.name, tuple(job.args), dict(job.kwargs), self.connection)
                    result = run_with_middleware(tuple(definition.middleware), ctx, job.perform)
                else:
                    result = job.perform()
        except Release as release:
            self._release(job, queue, member, release)
        except BaseException as exc:
            # Checked before the next claim (see _database_away); the job's own fate follows its policy.
            self._database_suspect = isinstance(exc, OperationalError | InterfaceError)
            self._fail(job, queue, member, exc, definition)
            if isinstance(exc, SystemExit | KeyboardInterrupt):
                raise
        else:
            self._succeed(job, queue, member, definition, result)
        finally:
            self._in_job = False
            self._beat.release()
            self._state = WorkerStatus.IDLE
            self.jobs_done += 1
            close_old_connections()

    def _succeed(
        self, job: Job, queue: Queue, member: str, definition: JobDefinition[Any, Any] | None, result: Any
    ) -> None:
        elapsed = time.monotonic() - self._job_started
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline(transaction=False) as pipe:
            claims.unclaim(pipe, queue, member)
            if result_ttl == 0:
                pipe.delete(job.key)
            else:
                pipe.hset(job.key, mapping={"status": JobStatus.FINISHED, "ended_at": utcformat(now())})
                if result_ttl and result_ttl > 0:
                    pipe.expire(job.key, result_ttl)
                    pipe.zadd(queue.finished_job_registry.key, {job.id: time.time() + result_ttl})
                if result is not None:
                    # Kept for job.return_value() and django-rq's job page.
                    Result.create(job, Result.Type.SUCCESSFUL, result_ttl, return_value=result, pipeline=pipe)
            pipe.hset(self.key, mapping={"state": WorkerStatus.IDLE, "current_job": ""})
            pipe.hincrby(self.key, "successful_job_count", 1)
            pipe.hincrbyfloat(self.key, "total_working_time", elapsed)
            recent.record_attempt(pipe, job, queue, definition, elapsed, wait_s=self._job_wait, failed=False)
            if definition is not None and definition.is_unique and not definition.unique_until_processing:
                scripts.release_in(pipe, definition.unique_lock_key(job.args, job.kwargs), job.id)
            pipe.execute()
        log.info("%s %s done in %.1f ms", job.func_name, job.id, elapsed * 1000)

    def _fail(
        self, job: Job, queue: Queue, member: str, exc: BaseException, definition: JobDefinition[Any, Any] | None
    ) -> None:
        apply_worker_defaults(job, self.default_tries, self.default_backoff)
        permanent_types: tuple[type[BaseException], ...] = definition.permanent if definition else (PermanentError,)
        failure = Failure(
            exception_class=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=str(exc) or type(exc).__name__,
            traceback="".join(traceback.format_exception(exc)),
            exception=exc,
        )
        try:  # bookkeeping only: it must never stand between a failure and its settling
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.hset(self.key, mapping={"state": WorkerStatus.IDLE, "current_job": ""})
                pipe.hincrby(self.key, "failed_job_count", 1)
                recent.record_attempt(
                    pipe,
                    job,
                    queue,
                    definition,
                    time.monotonic() - self._job_started,
                    wait_s=self._job_wait,
                    failed=True,
                )
                pipe.execute()
        except Exception:
            log.warning("worker %s: could not record the failure of %s in Redis", self.name, job.id, exc_info=True)
        settle(
            job=job,
            queue=queue,
            member=member,
            failure=failure,
            worker_name=self.name,
            permanent=isinstance(exc, permanent_types),
        )

    def _release(self, job: Job, queue: Queue, member: str, release: Release) -> None:
        """Back on the queue later, attempt not used up (middleware said "not now")."""
        from datetime import timedelta

        with self.connection.pipeline() as pipe:  # MULTI: back in the schedule, or still claimed
            unclaim(pipe, queue, member)
            queue.schedule_job(job, now() + timedelta(seconds=release.delay), pipeline=pipe)
            pipe.execute()
        log.info("%s %s %s", job.func_name, job.id, release)

    def _release_unique(self, definition: JobDefinition[Any, Any], job: Job) -> None:
        unique.release(self.connection, lock_key=definition.unique_lock_key(job.args, job.kwargs), job_id=job.id)

    # ------------------------------------------------------------------ RQ plumbing (docs/runtime.md)

    def request_stop(self, signum: int, frame: Any) -> None:
        """First SIGTERM/SIGINT: finish the job in hand, then exit 0.

        Unlike RQ we never raise from the handler, so a signal cannot land
        between taking a job and running it; the loop notices the flag within
        ``--sleep`` seconds. A second signal is RQ's cold shutdown: the job in
        hand is interrupted and settled (retried or failed), then we exit.
        """
        self._shutdown_requested_date = now()
        signal.signal(signal.SIGINT, self.request_force_stop)
        signal.signal(signal.SIGTERM, self.request_force_stop)
        self._stop_requested = True
        self.exit_reason = "stop signal (warm: finishing the job in hand)"
        log.info("worker %s: %s", self.name, self.exit_reason)

    def request_force_stop(self, signum: int, frame: Any) -> None:
        """Second signal: interrupt the job in hand (it is then settled), or just stop if idle."""
        if not self._in_job:
            self._stop_requested = True
            self.exit_reason = "second stop signal while idle"
            return
        super().request_force_stop(signum, frame)

    def subscribe(self) -> None:
        # RQ's pub/sub control thread (stop-job commands) is not used: jobs run
        # in this process and are stopped by timeouts or signals.
        return None

    def unsubscribe(self) -> None:
        return None
