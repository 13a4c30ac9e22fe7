"""VitoWorker's loop: claim a job, run it, keep house between jobs (queueing/worker/__init__.py)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from django.db import DatabaseError, connection
from rq import Queue
from rq.exceptions import StopRequested
from rq.suspension import WORKERS_SUSPENDED
from rq.utils import now
from rq.worker import WorkerStatus

from lib.process import rss_mb, signals_deferred
from queueing import claims, keys, reaper, scripts
from queueing.definitions import Backoff
from queueing.worker import penalty
from queueing.worker.commands import STOP_SIGNAL
from queueing.worker.execution import ExecutingWorker, WorkerJob
from queueing.worker.penalty import ThreadDeathPenalty
from queueing.worker.threads import JobThreads

log = logging.getLogger("queueing.worker")

MAINTENANCE_EVERY = 1.0  # seconds between promote/pause/restart checks
REAP_EVERY = 15.0
WORKER_TTL = 420
# Seconds a cold stop waits for the interrupted jobs to be settled; one blocked
# in a C call keeps its claim, which the reaper settles (retried or failed).
COLD_STOP_WAIT = 3.0

Job_ = tuple[WorkerJob, Queue, str, float | None]  # a claimed job: job, queue, claim member, wait (s)


class VitoWorker(ExecutingWorker):
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
        concurrency: int = 1,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        super().__init__(list(queues), **kwargs)
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.threaded = concurrency > 1
        if self.threaded:  # SIGALRM reaches the main thread only
            self.death_penalty_class = ThreadDeathPenalty
            penalty.install_interruptible_sleep()
        self._hands = {}
        self._counting = threading.Lock()
        self.jobs_claimed = 0
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
        self._suspended = False
        self._next_maintenance = 0.0
        self._next_reap = 0.0
        self._next_heartbeat = 0.0
        self._restart_mark: bytes | str = b""
        self._restart_flag = False
        self._beat = claims.Heartbeat(self.connection, self.key, self.worker_ttl)
        self._in_job = False
        self._threads: JobThreads | None = None
        self._cold_since: float | None = None
        self._database_suspect = False  # the last job failed on a dead PostgreSQL connection

    # ------------------------------------------------------------------ loop

    def work(  # type: ignore[override]
        self, burst: bool = False, logging_level: str | None = "INFO", max_jobs: int | None = None, **_: Any
    ) -> bool:
        self.bootstrap(logging_level)
        self.set_state(WorkerStatus.IDLE)  # RQ leaves "started" until its own dequeue, which we replace
        self._install_signal_handlers()  # type: ignore[no-untyped-call]
        signal.signal(STOP_SIGNAL, self._on_stop_signal)  # RQ's stop-job command (commands.py)
        self._restart_mark = self.connection.get(keys.RESTART_SIGNAL) or b""
        born = time.monotonic()
        self._beat.start()
        if self.threaded:
            self._threads = JobThreads(self.concurrency, self.run_claimed, name=self.name)
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
                    # Read before claiming: a job running now may queue more before it ends.
                    running = self._threads.busy if self._threads is not None else 0
                    claimed = self._claim_when_free(max_jobs)
                    if claimed is False:
                        continue  # every job thread busy for a second: maintenance first
                    if not claimed:
                        if burst and not self._has_due_scheduled():
                            if running == 0 or self._threads is None:
                                self.exit_reason = "burst: queues empty"
                                break
                            self._threads.wait_change(0.05)  # the running jobs may queue more
                            continue
                        self._wait_for_work(burst)
                        continue
                    self.jobs_claimed += len(claimed)
                    if self._threads is not None:
                        for one in claimed:
                            self._threads.submit(*one)
                    else:
                        self.run_claimed(*claimed[0])
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
            if self._threads is not None:
                self._drain_threads()
            self._beat.stop()
            self.teardown()  # type: ignore[no-untyped-call]
        log.info(
            "worker %s exiting after %d job(s): %s", self.name, self.jobs_done, self.exit_reason or "stop requested"
        )
        return self.jobs_done > 0

    def _claim_when_free(self, max_jobs: int | None) -> list[Job_] | Literal[False]:
        """Claim the next jobs once job threads are free to run them, as many as
        are free, in one call (one job on the single-job worker); False when no
        thread became free within a second."""
        threads = self._threads
        free = 1
        if threads is not None:
            free = threads.reserve(MAINTENANCE_EVERY)
            if not free:
                return False
        wanted = free if max_jobs is None else max(1, min(free, max_jobs - self.jobs_claimed))
        claimed: list[Job_] = []
        try:
            # No signal may land between taking a job and owning it.
            with signals_deferred():
                claimed = self._claim(wanted)
        finally:
            if threads is not None:
                threads.give_back(free - len(claimed))
        return claimed

    def _drain_threads(self) -> None:
        """Warm stop: every job in hand finishes. After a cold stop (the jobs were
        interrupted and are being settled) wait at most COLD_STOP_WAIT seconds: a
        job stuck in a C call keeps its claim, which the reaper settles."""
        threads = self._threads
        assert threads is not None
        if threads.busy:
            log.info("worker %s: waiting for %d job(s) in hand", self.name, threads.busy)
        while not threads.wait_idle(0.5):  # a loop, so a second signal is handled meanwhile
            if self._cold_since is not None and time.monotonic() - self._cold_since > COLD_STOP_WAIT:
                log.error("worker %s: %d job(s) did not stop; the reaper settles them", self.name, threads.busy)
                break
        threads.close()

    def _should_exit(self, born: float, max_jobs: int | None) -> bool:
        if max_jobs is not None and self.jobs_claimed >= max_jobs:
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
            pipe.exists(WORKERS_SUSPENDED)  # `rq suspend`: here, not before every claim
            paused, restart, suspended = pipe.execute()
        self._paused = {p.decode() if isinstance(p, bytes) else str(p) for p in paused}
        self._suspended = bool(suspended)
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
        if self._suspended:
            return []
        return [q for q in self.queues if q.name not in self._paused]

    def _claim(self, count: int = 1) -> list[Job_]:
        started_at = now()
        found = claims.claim_many(
            self.connection,
            self._active_queues(),
            count,
            worker_name=self.name,
            worker_key=self.key,
            started_at=started_at,
            borrow_max_timeout=self.borrow_max_timeout,
            own_first=self.queues[0].name,
        )
        out: list[Job_] = []
        for claimed in found:  # all restored before any is held: one that fails leaves every claim to the reaper
            job = WorkerJob(claimed.job_id, connection=self.connection, serializer=self.serializer)
            job.restore(claimed.fields)
            enqueued = job.enqueued_at
            wait_s = (started_at - enqueued).total_seconds() if enqueued else None
            out.append((job, claimed.queue, claimed.member, wait_s))
        for _, queue, member, _ in out:
            self._beat.hold(queue, member)  # the heartbeat keeps it alive from now
        return out

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
        self.exit_reason = "stop signal (warm: finishing the job(s) in hand)"
        log.info("worker %s: %s", self.name, self.exit_reason)

    def request_force_stop(self, signum: int, frame: Any) -> None:
        """Second signal: interrupt the job(s) in hand (each is then settled), or just stop if idle."""
        if not (self._threads.busy if self._threads is not None else self._in_job):
            self._stop_requested = True
            self.exit_reason = "second stop signal while idle"
            return
        if not self.threaded:
            super().request_force_stop(signum, frame)
            return
        asked = self._shutdown_requested_date
        if self._cold_since is not None or (asked is not None and (now() - asked).total_seconds() < 1):
            return  # RQ's rule: a duplicate signal within a second is the same request
        log.warning("worker %s: cold shut down: interrupting %d job(s)", self.name, len(self._hands))
        self._cold_since = time.monotonic()
        self._stop_requested = True
        if self._threads is not None:
            self._threads.cold = True
        for job_id, hand in list(self._hands.items()):
            if not hand.finalizing:  # one being settled is let finish its settling
                penalty.interrupt(job_id, SystemExit)
