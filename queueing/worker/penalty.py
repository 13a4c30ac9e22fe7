"""Per-job time limits for jobs run off the main thread (``--concurrency`` > 1).

SIGALRM, RQ's usual death penalty, reaches only the main thread. A job in a
worker thread is stopped the way Dramatiq's time limit stops one: a watchdog
thread raises an exception *in the job's thread* with CPython's
``PyThreadState_SetAsyncExc``. The same path carries RQ's stop-job command
(:class:`JobStopped`) and a cold shutdown (``SystemExit``), so each of them
lands inside the job and RQ's ``perform_job`` settles it like any failure.

Why not RQ's ``TimerDeathPenalty``: it starts a timer thread per job (a
thread start per job at thousands of jobs a second), and its exception can
land after the job has returned, in the middle of recording the success. Here
one watchdog serves every job, and firing is serialised with leaving the job
under a lock: once ``__exit__`` has closed the penalty nothing fires, and an
exception that fired but was not yet delivered when the job returned is
cleared and raised by ``__exit__`` itself — the job has timed out, whatever
its last instant did. One that lands on ``__exit__``'s very first
instruction propagates as the job's failure (which it is); the settling code
then starts with :func:`leave_thread`, which closes the penalty, so a repeat
cannot follow it there.

The limit: an asynchronous exception is delivered when the thread next runs
Python code, and a thread blocked in a C call runs none. ``time.sleep`` is the
one such call jobs make on purpose (polling, backing off), so in a threaded
worker a job thread's ``time.sleep`` waits on an event that firing sets: the
sleep returns at once and the exception lands. Any other blocking call (a
socket read) is stopped when it returns; every client the platform uses has
its own timeout. docs/runtime.md, "Concurrency".
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from types import TracebackType
from typing import Any, Literal

from rq.timeouts import BaseDeathPenalty, JobTimeoutException

log = logging.getLogger("queueing.worker")

REFIRE_EVERY = 1.0  # seconds between repeats of a timeout the job has not left yet

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
_set_async_exc.restype = ctypes.c_int


_original_sleep = time.sleep


class _Waker:
    """What a job thread's ``time.sleep`` waits on, woken by the watchdog.

    Not a ``threading.Event``: an Event is a Condition written in Python, and an
    asynchronous exception landing just after its lock was taken (on the
    return from ``Condition.__enter__``) leaves that lock held for ever — the
    next ``set()`` or ``wait()`` then hangs the worker. Here the state is one C
    lock, only ever taken without blocking or with a timeout: held means
    "asleep as asked", released means "woken". An exception landing between
    the two calls of :meth:`wait` leaves it held, so later sleeps of that job
    just run their full length.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        with contextlib.suppress(RuntimeError):  # already woken
            self._lock.release()

    def clear(self) -> None:
        self._lock.acquire(blocking=False)

    def wait(self, seconds: float) -> None:
        if self._lock.acquire(timeout=min(seconds, threading.TIMEOUT_MAX)):
            self.set()  # stays woken: the job's next sleeps return at once too

    def take(self, seconds: float | None) -> None:
        """Wait until woken (or ``seconds`` pass), then be asleep again: the watchdog's own wait."""
        self._lock.acquire(timeout=-1 if seconds is None else min(max(seconds, 0.0), threading.TIMEOUT_MAX))


_wakers: dict[int, _Waker] = {}  # job thread -> what its sleeps wait on


def _sleep(seconds: float) -> None:
    """``time.sleep`` in a threaded worker: a job thread's sleep can be woken by :meth:`ThreadDeathPenalty.fire`."""
    waker = _wakers.get(threading.get_ident())
    if waker is None or not isinstance(seconds, int | float):
        _original_sleep(seconds)  # and its TypeError for what is not a number
        return
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    waker.wait(seconds)


def install_interruptible_sleep() -> None:
    """From the threaded worker's start: ``time.sleep`` becomes :func:`_sleep`
    (others' sleeps unchanged), and logging takes its handler locks in a way an
    asynchronous exception cannot split (:func:`_handle`)."""
    time.sleep = _sleep
    _watchdog.start()  # here, not in a job thread (Thread.start waits on an Event)
    logging.Handler.handle = _handle  # type: ignore[method-assign]
    logging.StreamHandler.flush = _flush  # type: ignore[method-assign,assignment]


def _handle(self: logging.Handler, record: logging.LogRecord) -> bool:
    """``logging.Handler.handle`` as Python 3.13 writes it, ``with self.lock``.

    3.11's ``self.acquire(); try: ...`` has a gap between taking the handler's
    lock and entering the ``try``; a timeout landing there would leave the lock
    held and every thread that logs after it (the loop, the heartbeat's
    thread) hung. ``with`` on the C lock has no such gap.
    """
    rv = self.filter(record)
    if rv:
        if isinstance(rv, logging.LogRecord):
            record = rv
        if self.lock is None:
            self.emit(record)
        else:
            with self.lock:
                self.emit(record)
    return bool(rv)


def _flush(self: logging.StreamHandler) -> None:  # type: ignore[type-arg]
    """``logging.StreamHandler.flush`` with ``with self.lock``, for the reason in :func:`_handle`."""
    with self.lock:  # type: ignore[union-attr]
        if self.stream and hasattr(self.stream, "flush"):
            self.stream.flush()


def _raise_in(thread_id: int, exception: type[BaseException] | None) -> bool:
    """Make ``exception`` pending in the thread (None clears a pending one)."""
    # CPython keeps its own reference to the class; ours lives on the penalty.
    return bool(_set_async_exc(thread_id, None if exception is None else id(exception)) == 1)


def with_message(exception: type[BaseException], message: str) -> type[BaseException]:
    """A subclass that carries ``message``: an asynchronous exception is raised
    from its class, so the message must be in the class. Same name and module,
    so the ledger and ``except JobTimeoutException`` see the usual exception."""

    def __init__(self: BaseException, *_: Any) -> None:
        exception.__init__(self, message)

    return type(exception.__name__, (exception,), {"__init__": __init__, "__module__": exception.__module__})


class _Watchdog:
    """One daemon thread firing every overdue job's penalty.

    It watches only the jobs running now (at most ``--concurrency`` of them),
    scanned when the earliest deadline comes: a finished job leaves nothing
    behind, whatever its timeout, and a new job wakes the thread only when its
    deadline is the earliest.

    Job threads touch it only through C locks (no ``threading.Condition``),
    for the reason given on :class:`_Waker`.
    """

    def __init__(self) -> None:
        self._active: dict[ThreadDeathPenalty, float] = {}
        self._mutex = threading.Lock()
        self._wake = _Waker()
        self._target: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._mutex:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-time-limits", daemon=True)
                self._thread.start()

    def watch(self, penalty: ThreadDeathPenalty, deadline: float) -> None:
        if self._thread is None:
            self.start()
        with self._mutex:
            self._active[penalty] = deadline
            earliest = self._target is None or deadline < self._target
        if earliest:
            self._wake.set()

    def forget(self, penalty: ThreadDeathPenalty) -> None:
        with self._mutex:
            self._active.pop(penalty, None)

    def _run(self) -> None:
        while True:
            with self._mutex:
                clock = time.monotonic()
                due = [p for p, deadline in self._active.items() if deadline <= clock]
                for penalty in due:
                    del self._active[penalty]
                if not due:
                    self._target = min(self._active.values(), default=None)
            if not due:
                # A watch() with an earlier deadline wakes this at once, even if it
                # came between the scan and here (the waker stays set).
                self._wake.take(None if self._target is None else self._target - clock)
                continue
            for penalty in due:
                penalty.fire(penalty.timeout_exception)
                if penalty.active:
                    # Again every REFIRE_EVERY seconds until the job leaves: a job
                    # that swallows the exception (``except Exception``) still stops.
                    self.watch(penalty, time.monotonic() + REFIRE_EVERY)


_watchdog = _Watchdog()

# The penalty of each job running in a thread, by job id: RQ's stop-job
# command and a cold shutdown find the job's thread here.
_running: dict[str, ThreadDeathPenalty] = {}
# The penalty each job thread is inside, for leave_thread().
_current: dict[int, ThreadDeathPenalty] = {}


def leave_thread() -> None:
    """Nothing may fire into this thread any more: its penalty (if an exception
    landed before the penalty's own ``__exit__`` could close it) is closed and a
    pending exception dropped. The settling code calls this first. An exception
    landing while this runs is spent here, and it goes again."""
    thread_id = threading.get_ident()
    while True:
        try:
            penalty = _current.get(thread_id)
            if penalty is not None:
                penalty.close()
            _raise_in(thread_id, None)
            return
        except BaseException:  # noqa: S112 - an asynchronous exception, spent: try again
            continue


class ThreadDeathPenalty(BaseDeathPenalty):
    """RQ's death-penalty interface (``with penalty(timeout, exc, job_id=...)``) for a job's thread."""

    def __init__(self, timeout: float, exception: type[BaseException] = JobTimeoutException, **kwargs: Any) -> None:
        super().__init__(timeout, exception, **kwargs)  # type: ignore[no-untyped-call]
        self.job_id: str = kwargs.get("job_id") or ""
        self.thread_id = threading.get_ident()
        self.timeout_exception = _TimeoutClass(exception, timeout)
        self._lock = threading.Lock()
        self._active = False
        self._fired: type[BaseException] | None = None

    @property
    def active(self) -> bool:
        return self._active

    def __enter__(self) -> ThreadDeathPenalty:
        self._waker = _wakers.setdefault(self.thread_id, _Waker())
        self._waker.clear()
        self._active = True
        _current[self.thread_id] = self
        if self.job_id:
            _running[self.job_id] = self
        if self._timeout > 0:
            _watchdog.watch(self, time.monotonic() + self._timeout)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        while True:  # as leave_thread(): an exception landing meanwhile is spent, and it goes again
            try:
                self.close()
                fired = self._fired
                _raise_in(self.thread_id, None)  # fired but not yet delivered: it must not land later
                break
            except BaseException:  # noqa: S112
                continue
        if fired is not None and (exc_type is None or not issubclass(exc_type, fired)):
            raise fired()
        return False

    def close(self) -> None:
        """From here nothing fires (idempotent)."""
        with self._lock:
            self._active = False
        self._waker.clear()  # the settling code's own sleeps (a ledger retry) sleep again
        if self._timeout > 0:
            _watchdog.forget(self)
        if _running.get(self.job_id) is self:
            del _running[self.job_id]
        if _current.get(self.thread_id) is self:
            del _current[self.thread_id]

    def fire(self, exception: type[BaseException]) -> bool:
        """Raise ``exception`` in the job's thread, unless the job has left its
        penalty or is already being stopped for another reason (the timeout
        always fires: a job that swallowed a stop still has its time limit)."""
        with self._lock:
            if not self._active:
                return False
            if self._fired is not None and exception not in (self._fired, self.timeout_exception):
                return False
            first = self._fired is None
            self._fired = exception
            _raise_in(self.thread_id, exception)
            self._waker.set()  # a job asleep in time.sleep wakes, and the exception lands
        if first and exception is self.timeout_exception:
            log.warning("job %s exceeded its %ss timeout: stopping it", self.job_id, self._timeout)
        return True


class _TimeoutClasses:
    """One message-carrying timeout class per (exception, seconds), made once."""

    def __init__(self) -> None:
        self._made: dict[tuple[type[BaseException], float], type[BaseException]] = {}

    def __call__(self, exception: type[BaseException], timeout: float) -> type[BaseException]:
        key = (exception, timeout)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = with_message(exception, f"Task exceeded maximum timeout value ({timeout} seconds)")
        return made


_TimeoutClass = _TimeoutClasses()


def interrupt(job_id: str, exception: type[BaseException]) -> bool:
    """Raise ``exception`` in the thread running ``job_id`` (stop-job, cold shutdown)."""
    penalty = _running.get(job_id)
    return penalty is not None and penalty.fire(exception)
