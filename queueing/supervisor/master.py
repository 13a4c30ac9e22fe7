"""The master: one process that starts, watches, scales, replaces and drains
the children of every supervisor, and publishes its state each tick."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from redis import Redis
from redis.exceptions import RedisError
from rq.queue import Queue

from queueing import keys
from queueing.supervisor import observe
from queueing.supervisor import state as masters_state
from queueing.supervisor.balancing import QueueLoad, balance, estimate_waits
from queueing.supervisor.children import Child, Observation, Pool, SupervisorRun, child_setup, exit_text
from queueing.supervisor.config import SupervisorConfig

log = logging.getLogger("queueing.supervisor")

T = TypeVar("T")

TICK = 1.0  # seconds between observations, scaling steps and state updates
DRAIN_RETRY = 5.0  # draining with Redis away: seconds between attempts to publish
DRAIN_GUARD = 10.0  # ... and none this close to a drain deadline
PRUNE_EVERY = 60.0  # seconds between sweeps of the states of masters that died without removing theirs
DECISIONS_KEPT = 20
YOUNG_DEATH = 10.0  # a child dying sooner than this is crash-looping: back off
MAX_BACKOFF = 60.0


class Master:
    def __init__(
        self,
        supervisors: Sequence[SupervisorConfig],
        *,
        connection: Redis,
        drain: float,
        manage_py: Path,
        verbosity: int = 1,
        name: str | None = None,
    ) -> None:
        self.conn = connection
        self.drain = drain
        self.manage_py = manage_py
        self.verbosity = verbosity
        self.host = socket.gethostname()
        # The token: in containers host and pid repeat from one start to the
        # next, and a child named like one SIGKILLed with the previous master
        # (its RQ worker key lives on for minutes) would be refused by RQ.
        self.name = name or f"{self.host}-{os.getpid()}-{secrets.token_hex(3)}"
        self.runs = [
            SupervisorRun(c, [Pool(c, queues, n) for queues, n in c.initial_pools().items()]) for c in supervisors
        ]
        self.queue_keys = {q: Queue.redis_queue_namespace_prefix + q for c in supervisors for q in c.queues}
        self.status: Literal["running", "draining"] = "running"
        self.started_at = time.time()
        self.stop_reason = ""
        self.cold = False  # a second stop signal: interrupt jobs now
        self.runtimes: dict[str, float] = {}
        self.last: Observation | None = None
        self._terminate_mark: bytes | str | None = None
        self._mark_known = False  # False while Redis has not answered yet: the first answer is the mark
        self._redis_ok = True
        self._spawned = 0
        self._next_prune = 0.0

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Supervise until a stop signal or queue_terminate, then drain."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        mark = self._redis(lambda: (self.conn.get(keys.SUPERVISOR_TERMINATE),), None)
        if mark is not None:
            self._terminate_mark, self._mark_known = mark[0], True
        self._redis(self._greet_other_masters, None)
        log.info(
            "queue master %s started (pid %d): %s; drain %gs",
            self.name,
            os.getpid(),
            "; ".join(run.config.describe() for run in self.runs),
            self.drain,
        )
        try:
            while not self.stop_reason:
                self.tick()
                self._sleep(TICK)
        finally:
            # Also after an unexpected error: the children still finish their jobs.
            self.stop_reason = self.stop_reason or "internal error: draining"
            self.drain_children()
            if self._redis_ok:  # else its state expires on its own; no waiting on a Redis that is away
                self._redis(self._unpublish, None)
        log.info("queue master %s stopped", self.name)

    def _on_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if not self.stop_reason:
            self.stop_reason = f"{name}: draining (a second signal interrupts the jobs in hand)"
            return
        # An impatient operator (Ctrl-C twice): stop the jobs in hand now; they are retried or failed.
        self.cold = True

    def _sleep(self, seconds: float) -> None:
        """Sleep in slices, so a signal is acted on within 0.1 s."""
        deadline = time.monotonic() + seconds
        while not self.stop_reason and time.monotonic() < deadline:
            time.sleep(0.1)

    def tick(self) -> None:
        observation = self._redis(self.observe, None)
        self.reap()
        if observation is not None:
            self.last = observation
            self._check_terminate(observation)
            if not self.stop_reason:
                self.rebalance(observation)
        if not self.stop_reason:
            self.reconcile()
        self._redis(self.publish, None)

    def drain_children(self) -> None:
        """Every child finishes its job in hand and exits; after ``drain``
        seconds the jobs still running are interrupted (a second SIGTERM:
        the worker settles them, to be retried or recorded as failed), and
        whatever is left a few seconds later is SIGKILLed (the reaper then
        retries its job)."""
        self.status = "draining"
        log.info("queue master %s: %s; %d process(es) to drain", self.name, self.stop_reason, len(self._all()))
        started = time.monotonic()
        grace = min(5.0, self.drain / 4)
        for child in self._all():
            child.stop()
        next_publish = 0.0
        while self._all():
            elapsed = time.monotonic() - started
            if self.cold or elapsed >= self.drain - grace:
                self._interrupt_all(elapsed)
            if elapsed >= self.drain:
                break
            self.reap()
            if time.monotonic() >= next_publish and self._may_publish(elapsed, grace):
                self._redis(self.publish, None)
                next_publish = time.monotonic() + (TICK if self._redis_ok else DRAIN_RETRY)
            time.sleep(0.1)
        self._kill_all()
        log.info("queue master %s drained in %.1fs", self.name, time.monotonic() - started)

    def _may_publish(self, elapsed: float, grace: float) -> bool:
        """While Redis answers, always. Once it has failed, an attempt can
        block for the client's timeouts (an unreachable host): not when that
        would push back the interrupt or kill deadline."""
        if self._redis_ok:
            return True
        return not any(0 <= deadline - elapsed < DRAIN_GUARD for deadline in (self.drain - grace, self.drain))

    def _interrupt_all(self, elapsed: float) -> None:
        for child in self._all():
            if not child.forced:
                log.warning(
                    "%s (pid %d) still busy after %.0fs of drain: interrupting its job", child.name, child.pid, elapsed
                )
                child.interrupt()

    def _kill_all(self) -> None:
        for child in self._all():
            if child.proc.poll() is None:
                log.error(
                    "%s (pid %d) did not stop in time: SIGKILL (the reaper retries its job)", child.name, child.pid
                )
                child.proc.kill()
            child.proc.wait()
        for run in self.runs:
            for pool in run.pools:
                pool.children.clear()
                pool.retiring.clear()

    # ------------------------------------------------------------------ observing Redis

    def observe(self) -> Observation:
        """Queues, pauses, the terminate signal and the children's counters (observe.py)."""
        children = self._all()
        observation, rows = observe.read(self.conn, self.queue_keys, children)
        observe.update_children(children, rows, self.runtimes, self._queue_of)
        return observation

    def _queue_of(self, child: Child) -> str | None:
        for pool in self._pools():
            if child in pool.children or child in pool.retiring:
                return pool.queues[0] if len(pool.queues) == 1 else None
        return None

    def _check_terminate(self, observation: Observation) -> None:
        signal_value = observation.terminate
        if not self._mark_known:
            # Redis was away at start: a signal already there may predate us.
            self._terminate_mark, self._mark_known = signal_value, True
            return
        if signal_value is not None and signal_value != self._terminate_mark:
            self.stop_reason = "queue_terminate: draining"

    # ------------------------------------------------------------------ scaling and children

    def loads(self, run: SupervisorRun, observation: Observation) -> dict[str, QueueLoad]:
        depths = {q: observation.depths.get(q, 0) for q in run.config.queues}
        waits = estimate_waits(depths, {q: self.runtimes.get(q) for q in run.config.queues})
        return {q: QueueLoad(depths[q], waits[q], q in observation.paused) for q in run.config.queues}

    def rebalance(self, observation: Observation) -> None:
        now = time.time()
        for run in self.runs:
            if run.config.balance != "auto":
                continue
            current = {q: run.pool(q).target for q in run.config.queues}
            plan = balance(
                current,
                self.loads(run, observation),
                run.config,
                now=now,
                last_scaled_at=run.last_scaled_at,
                retiring={q: len(run.pool(q).retiring) for q in run.config.queues},
            )
            if not plan.scaled:
                continue
            run.last_scaled_at = now
            for decision in plan.decisions:
                run.pool(decision.queue).target = decision.after
                log.info(
                    "supervisor %s: queue %s %d -> %d process(es): %s",
                    run.config.name,
                    decision.queue,
                    decision.before,
                    decision.after,
                    decision.reason,
                )
            run.decisions = (run.decisions + plan.decisions)[-DECISIONS_KEPT:]

    def reconcile(self) -> None:
        """Start children up to each pool's target; retire the extra ones (idle first, newest first)."""
        now = time.monotonic()
        for pool in self._pools():
            while len(pool.children) < pool.target and now >= pool.next_start:
                try:
                    child = self.spawn(pool, restarts=pool.owed[0] if pool.owed else 0)
                except (OSError, subprocess.SubprocessError):
                    # Out of processes or memory for a moment: the running children go on.
                    log.exception("could not start a worker for %s; trying again in 5s", pool.label)
                    pool.next_start = now + 5
                    break
                pool.children.append(child)
                if pool.owed:
                    pool.owed.pop(0)
            if len(pool.children) >= pool.target:
                pool.owed.clear()  # scaled down meanwhile: those slots are gone
            extra = len(pool.children) - pool.target
            if extra > 0:
                by_preference = sorted(pool.children, key=lambda c: (c.busy, -c.started_at))
                for child in by_preference[:extra]:
                    log.info("%s (pid %d): scaled down, finishing its job in hand", child.name, child.pid)
                    child.stop()
                    pool.children.remove(child)
                    pool.retiring.append(child)

    def spawn(self, pool: Pool, *, restarts: int) -> Child:
        self._spawned += 1
        name = f"{self.name}:{pool.supervisor.name}:{self._spawned}"
        command = [
            sys.executable,
            str(self.manage_py),
            "rqworker",
            *pool.queues,
            "--name",
            name,
            *pool.supervisor.worker_flags(),
            "--verbosity",
            str(self.verbosity),
        ]
        niceness = pool.supervisor.nice
        # preexec_fn is only unsafe with threads, and the master has none.
        proc = subprocess.Popen(
            command,
            cwd=self.manage_py.parent,
            # Its own session: a terminal's Ctrl-C reaches the master only, and
            # the master alone decides when a child gets its first and second SIGTERM.
            start_new_session=True,
            preexec_fn=lambda: child_setup(niceness),
        )
        log.info("%s: started pid %d on %s", name, proc.pid, pool.label)
        return Child(proc, name, time.time(), restarts)

    def reap(self) -> None:
        """Notice children that exited: retired ones are gone; the others are
        owed a replacement, which ``reconcile`` starts."""
        for pool in self._pools():
            for child in [c for c in pool.retiring if c.proc.poll() is not None]:
                pool.retiring.remove(child)
                log.info("%s (pid %d) exited %s", child.name, child.pid, exit_text(child.proc.returncode))
            for child in [c for c in pool.children if c.proc.poll() is not None]:
                pool.children.remove(child)
                if child.stop_sent is not None or self.stop_reason:
                    log.info("%s (pid %d) exited %s", child.name, child.pid, exit_text(child.proc.returncode))
                    continue
                self._replace(pool, child)

    def _replace(self, pool: Pool, child: Child) -> None:
        code = child.proc.returncode
        lived = time.time() - child.started_at
        if code == 0:
            # A limit (--max-jobs, --max-time, --memory) or queue_restart: recycling.
            log.info("%s (pid %d) recycled after %.0fs: starting a fresh one", child.name, child.pid, lived)
            pool.crash_streak = 0
            pool.owed.append(child.restarts)
            return
        pool.restarts += 1
        pool.crash_streak = pool.crash_streak + 1 if lived < YOUNG_DEATH else 0
        delay = min(MAX_BACKOFF, 2.0 ** (pool.crash_streak - 1)) if pool.crash_streak else 0.0
        pool.next_start = time.monotonic() + delay
        log.warning(
            "%s (pid %d) died (%s) after %.0fs; restarting%s (restart #%d of pool %s)",
            child.name,
            child.pid,
            exit_text(code),
            lived,
            f" in {delay:g}s" if delay else "",
            child.restarts + 1,
            pool.label,
        )
        pool.owed.append(child.restarts + 1)

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """What the dashboard shows of this master (its shape: state.py)."""
        return masters_state.describe(self)

    def publish(self) -> None:
        masters_state.publish(self.conn, self.name, self.state(), started_at=self.started_at)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY
            masters_state.prune(self.conn)

    def _unpublish(self) -> None:
        masters_state.unpublish(self.conn, self.name)

    def _greet_other_masters(self) -> None:
        """Several masters are fine (one per worker host); two on one host
        usually mean it was started twice."""
        others = [
            s["master"] for s in masters_state.supervisor_state(self.conn) if s["master"].get("name") != self.name
        ]
        same_host = [m for m in others if m.get("host") == self.host]
        if same_host:
            log.warning(
                "another queue master is running on this host (%s): both start workers for their supervisors",
                ", ".join(str(m.get("name")) for m in same_host),
            )
        elif others:
            log.info("other queue masters running: %s", ", ".join(str(m.get("name")) for m in others))

    # ------------------------------------------------------------------ helpers

    def _pools(self) -> list[Pool]:
        return [pool for run in self.runs for pool in run.pools]

    def _all(self) -> list[Child]:
        return [child for pool in self._pools() for child in (*pool.children, *pool.retiring)]

    def _redis(self, call: Callable[[], T], default: T) -> T:
        """Redis away: children keep working (they wait for it themselves) and
        the master keeps restarting them; it only stops scaling and publishing.
        Any other error is a bug: logged with its traceback, and the master
        goes on supervising its children."""
        try:
            result = call()
        except RedisError as exc:  # ConnectionError, TimeoutError, ResponseError...
            if self._redis_ok:
                log.error("queue master %s: Redis unavailable (%s); scaling paused", self.name, exc)
            self._redis_ok = False
            return default
        except Exception:
            log.exception("queue master %s: unexpected error in %s", self.name, getattr(call, "__name__", call))
            return default
        if not self._redis_ok:
            log.info("queue master %s: Redis is back", self.name)
        self._redis_ok = True
        return result
