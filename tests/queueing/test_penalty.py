"""The threaded worker's death penalty under a storm of asynchronous exceptions.

A job thread that keeps swallowing what is raised into it while it sleeps and
logs must never leave a lock held behind it: the sleep's waker and logging's
handler locks are used by the watchdog and by every other thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time

import pytest

from queueing.worker import penalty


class Interrupted(Exception):
    pass


@pytest.fixture
def threaded_worker_patches(monkeypatch: pytest.MonkeyPatch) -> None:
    # install_interruptible_sleep() patches process-wide; these restore it afterwards.
    monkeypatch.setattr(time, "sleep", time.sleep)
    monkeypatch.setattr(logging.Handler, "handle", logging.Handler.handle)
    monkeypatch.setattr(logging.StreamHandler, "flush", logging.StreamHandler.flush)
    penalty.install_interruptible_sleep()


def _finishes(target: object, seconds: float = 10) -> bool:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_exceptions_landing_anywhere_in_sleep_and_logging_leave_no_lock_held(threaded_worker_patches: None) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("tests.penalty.storm")
    log.addHandler(handler)
    log.propagate = False
    stop = False
    ready = False  # the job is inside its try: the next exception may be raised
    hits: list[int] = []
    entered = threading.Event()

    def job() -> None:
        nonlocal ready
        with contextlib.suppress(Interrupted), penalty.ThreadDeathPenalty(0, Interrupted, job_id="storm"):
            entered.set()
            while True:
                try:
                    while not stop:
                        ready = True
                        time.sleep(0.0005)
                        log.warning("tick")
                    break
                except Interrupted:
                    ready = False
                    hits.append(1)
        # Leaving, the penalty raises what was fired (a job that was stopped
        # has been stopped, whatever it did after); suppressed here.

    worker = threading.Thread(target=job, daemon=True)
    worker.start()
    assert entered.wait(5)
    fired = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline or len(hits) < fired:
        # One at a time, and only once the job is back in its try: each lands
        # somewhere in the sleep, the logging or the loop, never in the handler.
        if ready and len(hits) == fired:
            fired += penalty.interrupt("storm", Interrupted)
    stop = True
    worker.join(10)
    assert not worker.is_alive(), "the job thread hung on a lock left held"
    assert fired > 100 and len(hits) > 100
    assert _finishes(lambda: log.warning("after the storm")), "a logging lock was left held"
    assert "after the storm" in stream.getvalue()
    log.removeHandler(handler)


def test_a_timeout_still_fires_after_a_storm(threaded_worker_patches: None) -> None:
    outcome: list[str] = []

    def job() -> None:
        try:
            with penalty.ThreadDeathPenalty(0.2, Interrupted, job_id="late"):
                time.sleep(30)  # woken by the watchdog, not slept out
        except Interrupted:
            outcome.append("stopped")

    assert _finishes(job)  # in well under the job's 30 s sleep
    assert outcome == ["stopped"]
