"""Jobs used by the queueing tests; they run in real worker subprocesses.

Each records what happened in Redis lists (``t:*``) so tests assert outcomes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import django_rq

from queueing.definitions import Exponential, PermanentError, job
from queueing.middleware import Limit, RateLimited, ThrottlesExceptions, WithoutOverlapping, define_rate_limit


def _r():  # type: ignore[no-untyped-def]
    return django_rq.get_connection("default")


def effects(name: str) -> list[str]:
    return [v.decode() for v in _r().lrange(f"t:{name}", 0, -1)]


@job(queue="default")
def record(tag: str) -> None:
    _r().rpush("t:effects", tag)


@job(queue="high")
def record_high(tag: str) -> None:
    _r().rpush("t:effects", f"high:{tag}")


@job(tries=3)
def flaky(tag: str, fail_times: int) -> None:
    attempt = _r().incr(f"t:flaky:{tag}")
    _r().rpush("t:attempts", f"{tag}:{attempt}")
    if attempt <= fail_times:
        raise ConnectionError(f"attempt {attempt} of {tag} failed")
    _r().rpush("t:effects", tag)


def _hook(exc: BaseException, tag: str) -> None:
    _r().rpush("t:hooks", f"{tag}:{type(exc).__name__}")


@job(tries=2, on_failure=_hook)
def always_fails(tag: str) -> None:
    _r().rpush("t:attempts", tag)
    raise RuntimeError(f"{tag} always fails")


class InvalidPayload(PermanentError):
    pass


@job(tries=5, on_failure=_hook)
def rejects(tag: str) -> None:
    _r().rpush("t:attempts", tag)
    raise InvalidPayload(f"{tag} is invalid")


@job(unique_for=60)
def unique_work(key: str) -> None:
    _r().rpush("t:effects", f"unique:{key}")


@job(unique_for=60, unique_until_processing=True)
def unique_until_start(key: str) -> None:
    _r().rpush("t:effects", f"uup:{key}")


@job(timeout=1, tries=1, on_failure=_hook)
def too_slow(tag: str) -> None:
    time.sleep(5)


@job(tries=1)
def sleeper(tag: str, seconds: float) -> None:
    _r().rpush("t:started", tag)
    time.sleep(seconds)
    _r().rpush("t:effects", tag)


@job(tries=2, middleware=[WithoutOverlapping("shared", release_after=1, expire_after=30)])
def exclusive(tag: str, seconds: float) -> None:
    _r().rpush("t:spans", f"start:{tag}:{time.time()}")
    time.sleep(seconds)
    _r().rpush("t:spans", f"end:{tag}:{time.time()}")


define_rate_limit("test-per-second", lambda ctx: Limit.per_second(3, by=ctx.args[0]))


@dataclass(frozen=True)
class _Admitted:
    """Wraps RateLimited and records when it let a job through, as the clock
    read just before and just after its check: the window it counted the job
    in is known whenever both readings fall in the same second (a stamp taken
    later, in the job, can fall in the next one)."""

    inner: RateLimited

    def __call__(self, ctx: Any, call_next: Any) -> Any:
        before = time.time()

        def admitted() -> Any:
            _r().rpush("t:admitted", f"{ctx.args[0]}:{before}:{time.time()}")
            return call_next()

        return self.inner(ctx, admitted)


@job(tries=1, middleware=[_Admitted(RateLimited("test-per-second"))])
def limited(tenant: str, n: int) -> None:
    _r().rpush("t:limited", f"{tenant}:{n}:{time.time()}")


@job(tries=10, backoff=0, middleware=[ThrottlesExceptions(max_exceptions=2, decay=3)])
def calls_flaky_provider(tag: str) -> None:
    _r().rpush("t:provider", f"{tag}:{time.time()}")
    raise ConnectionError("provider down")


@job(tries=3, backoff=Exponential(base=1, cap=2, jitter=0))
def retried_with_backoff(tag: str) -> None:
    _r().rpush("t:attempts", f"{tag}:{time.time()}")
    raise ConnectionError("again")


@job()
def tenant_job(tenant_id: int, tag: str) -> None:
    raise RuntimeError(f"tenant {tenant_id} job {tag} failed")


@job(tries=3, backoff=1)
def needs_database(tag: str) -> None:
    _r().rpush("t:attempts", tag)
    from django.db import connection

    connection.ensure_connection()
    _r().rpush("t:effects", tag)


@job(timeout=30)
def quick(tag: str) -> None:
    """A short job (30 s timeout): one a borrowing high worker may take."""
    _r().rpush("t:quick", tag)


@job(timeout=1800, tries=1)
def long_running(tag: str, seconds: float) -> None:
    """A job declared to run up to 30 minutes, like an export."""
    _r().rpush("t:long", tag)
    time.sleep(seconds)


def _tick_for(seconds: float) -> None:
    """Wait in short sleeps: Python code runs between them, so a job thread can be
    interrupted (an asynchronous exception waits for the thread's next bytecode)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)


@job(tries=1)
def ticker(tag: str, seconds: float) -> None:
    _r().rpush("t:started", tag)
    _tick_for(seconds)
    _r().rpush("t:effects", tag)


@job(timeout=1, tries=1, on_failure=_hook)
def overruns(tag: str) -> None:
    _r().rpush("t:started", tag)
    try:
        _tick_for(30)
    except Exception:  # a job that swallows everything is still stopped
        _tick_for(30)
    _r().rpush("t:effects", tag)


@job(tries=1)
def in_flight(tag: str, seconds: float) -> None:
    """Records its span and its PostgreSQL backend: concurrency and per-thread connections."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    _r().rpush("t:spans", f"{tag}:{time.time()}:{time.time() + seconds}:{backend}")
    _tick_for(seconds)
    _r().rpush("t:effects", tag)


@job(tries=1)
def exits(tag: str) -> None:
    """A job that calls sys.exit(): settled as a failure; the worker goes on."""
    import sys

    _r().rpush("t:started", tag)
    sys.exit(3)
