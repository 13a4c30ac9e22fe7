"""Job middleware (Laravel's WithoutOverlapping, RateLimited, ThrottlesExceptions).

A middleware wraps one attempt. Raising :class:`Release` puts the job back on
its queue after a delay *without* using up an attempt: being told "not now"
is not a failure.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis import Redis

from queueing import keys, scripts

log = logging.getLogger(__name__)


class Release(Exception):
    """Put the job back on its queue in ``delay`` seconds; not an attempt."""

    def __init__(self, delay: float, reason: str) -> None:
        self.delay = max(1.0, float(delay))
        self.reason = reason
        super().__init__(f"released for {self.delay:.0f}s: {reason}")


@dataclass(frozen=True)
class JobContext:
    """What a middleware may look at: the job's identity and arguments."""

    job_id: str
    job_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    connection: Redis


Next = Callable[[], Any]


class Middleware(Protocol):
    def __call__(self, ctx: JobContext, call_next: Next) -> Any: ...


KeyFunc = Callable[[JobContext], str]


def _resolve(key: str | KeyFunc, ctx: JobContext) -> str:
    return key(ctx) if callable(key) else key


@dataclass(frozen=True)
class WithoutOverlapping:
    """At most one job with this key runs at a time; others wait ``release_after`` s.

    ``expire_after`` bounds the lock, so a SIGKILLed worker cannot block the key
    for longer than that.
    """

    key: str | KeyFunc
    release_after: float = 10
    expire_after: int = 300

    def __call__(self, ctx: JobContext, call_next: Next) -> Any:
        lock = keys.overlap_lock(f"{ctx.job_name}:{_resolve(self.key, ctx)}")
        token = uuid.uuid4().hex
        if not ctx.connection.set(lock, token, nx=True, ex=self.expire_after):
            raise Release(self.release_after, f"another job holds {lock}")
        try:
            return call_next()
        finally:
            scripts.release(ctx.connection, lock, token)


@dataclass(frozen=True)
class Limit:
    """``max_attempts`` per ``per_seconds``, counted separately for each ``by`` value."""

    max_attempts: int
    per_seconds: int
    by: str = "all"

    @classmethod
    def per_minute(cls, n: int, by: object = "all") -> Limit:
        return cls(n, 60, str(by))

    @classmethod
    def per_second(cls, n: int, by: object = "all") -> Limit:
        return cls(n, 1, str(by))


_limiters: dict[str, Callable[[JobContext], Limit]] = {}


def define_rate_limit(name: str, limit: Callable[[JobContext], Limit]) -> None:
    """Register a named limit, e.g. ``define_rate_limit("mail", lambda c: Limit.per_minute(50, by=c.args[0]))``."""
    _limiters[name] = limit


@dataclass(frozen=True)
class RateLimited:
    """Hold a job back while its named limit is used up (fixed windows in Redis)."""

    name: str

    def __call__(self, ctx: JobContext, call_next: Next) -> Any:
        try:
            limit = _limiters[self.name](ctx)
        except KeyError:
            raise LookupError(f"no rate limit named {self.name!r}; define it with define_rate_limit()") from None
        now = time.time()
        window = int(now // limit.per_seconds)
        key = keys.rate_window(self.name, limit.by, window)
        with ctx.connection.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, limit.per_seconds + 1)
            used = int(pipe.execute()[0])
        if used > limit.max_attempts:
            # Come back when the window turns over; the attempt is not used up.
            raise Release((window + 1) * limit.per_seconds - now, f"rate limit {self.name} ({limit.by})")
        return call_next()


@dataclass(frozen=True)
class ThrottlesExceptions:
    """After ``max_exceptions`` failures within ``decay`` seconds, stop calling the
    third party: jobs are released until the window passes (a circuit breaker)."""

    max_exceptions: int
    decay: int = 600
    key: str | KeyFunc | None = None

    def __call__(self, ctx: JobContext, call_next: Next) -> Any:
        counter = keys.throttle(f"{ctx.job_name}:{_resolve(self.key, ctx) if self.key else 'all'}")
        failures = ctx.connection.get(counter)
        if failures is not None and int(failures) >= self.max_exceptions:
            ttl = int(ctx.connection.ttl(counter))
            count = failures.decode() if isinstance(failures, bytes) else str(failures)
            raise Release(max(ttl, 1), f"{count} recent exceptions, throttled")
        try:
            return call_next()
        except Release:
            raise  # an inner middleware said "not now": not a provider failure
        except Exception:
            with ctx.connection.pipeline(transaction=False) as pipe:
                # The window starts at the first failure (SET NX keeps its TTL;
                # EXPIRE NX would need Redis 7, the embedded one is 6.2).
                pipe.set(counter, 0, nx=True, ex=self.decay)
                pipe.incr(counter)
                pipe.execute()
            raise


def run_with_middleware(chain: tuple[Middleware, ...], ctx: JobContext, handler: Next) -> Any:
    def step(index: int) -> Any:
        if index == len(chain):
            return handler()
        return chain[index](ctx, lambda: step(index + 1))

    return step(0)
