"""The job threads of a worker run with ``--concurrency`` N > 1.

The main thread keeps the loop (claiming in strict queue order, waiting,
maintenance, signals) and claims a job only when a thread is free, so a worker
never holds a claimed job that no thread will run.
Each thread is long-lived and runs one job at a time through the same
``run_claimed`` as the single-job worker; Django gives each thread its own
database connections, checked around every job and closed when it ends.

Why threads: the jobs this platform runs in numbers wait on sockets (SMTP,
HTTP to providers and webhook receivers, PostgreSQL, Redis), and CPython
releases the GIL while they wait. A CPU-bound queue gains nothing and keeps
the default of 1 (docs/runtime.md, "Concurrency").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from lib import mail
from queueing.worker import penalty

log = logging.getLogger("queueing.worker")


class JobThreads:
    def __init__(self, size: int, run: Callable[..., None], *, name: str) -> None:
        self.size = size
        self._run = run
        self._inbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._changed = threading.Condition()
        self._busy = 0
        self.cold = False  # a cold stop is under way (loop.request_force_stop)
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-job-{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    @property
    def busy(self) -> int:
        return self._busy

    def reserve(self, timeout: float) -> int:
        """Wait until a thread is free (at most ``timeout``), then reserve every free
        one; returns how many (0: none freed). Each is then given a job with
        :meth:`submit` or returned with :meth:`give_back`."""
        with self._changed:
            if self._busy >= self.size and not self._changed.wait_for(lambda: self._busy < self.size, timeout):
                return 0
            free = self.size - self._busy
            self._busy = self.size
            return free

    def give_back(self, count: int) -> None:
        """Reserved threads that got no job (the queues had fewer)."""
        if count > 0:
            with self._changed:
                self._busy -= count
                self._changed.notify_all()

    def submit(self, *claimed: Any) -> None:
        self._inbox.put(claimed)

    def wait_idle(self, timeout: float) -> bool:
        """True once no job is in hand; False after ``timeout`` (the caller loops, so signals are handled)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._busy == 0, timeout)

    def wait_change(self, timeout: float) -> None:
        """Until a job ends (or ``timeout``): a burst worker waits here for what its jobs may queue."""
        with self._changed:
            self._changed.wait(timeout)

    def close(self, wait: float = 5.0) -> None:
        """Let every thread end (after its job): each closes its database connections
        and QUITs its SMTP session; wait up to ``wait`` seconds for them."""
        for _ in self._threads:
            self._inbox.put(None)
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _done(self) -> None:
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()

    def _serve(self) -> None:
        try:
            while (claimed := self._inbox.get()) is not None:
                try:
                    if not self.cold:  # after a cold stop a job not yet started is left to the reaper
                        self._run(*claimed)
                except (SystemExit, KeyboardInterrupt):
                    # Re-raised after settling: a cold stop's interrupt ends the thread; a
                    # job's own sys.exit() is settled like any failure and the thread goes on.
                    if self.cold:
                        return
                    log.warning("job thread %s: a job raised SystemExit; settled, going on", self._name())
                except Exception:
                    # Redis failed while recording a success: the claim is still held,
                    # so the reaper settles it (as in the single-job loop).
                    log.exception("job thread %s: bookkeeping error", self._name())
                finally:
                    penalty.leave_thread()
                    self._done()
        finally:
            connections.close_all()
            mail.close_connection()  # QUIT on this thread's kept SMTP session (lib/mail.py)

    @staticmethod
    def _name() -> str:
        return threading.current_thread().name
