"""Declaring a job once, with its options (Laravel's job class properties).

    @job(queue="high", tries=5, backoff=[10, 30, 60], timeout=120)
    def process_payment_event(event_id: int) -> None: ...

    process_payment_event.dispatch(42)                       # after commit
    process_payment_event.dispatch_in(timedelta(minutes=5), 42)
    process_payment_event.dispatch_many([(1,), (2,), (3,)])  # one round trip per chunk

The function stays a plain function (calling it runs it inline); the worker
looks its definition up by dotted name to apply tries, permanent errors,
unique locks, middleware and the failure hook.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

if TYPE_CHECKING:
    from queueing.dispatch import Dispatch
    from queueing.middleware import Middleware

P = ParamSpec("P")
R = TypeVar("R")

FailureHook = Callable[..., None]
UniqueKey = Callable[..., str]


class PermanentError(Exception):
    """Raise (or subclass) for failures that no retry can fix: they fail at once."""


@dataclass(frozen=True)
class Exponential:
    """Backoff ``base * 2**n`` seconds, capped, with up to ``jitter`` extra (0..1 of the delay)."""

    base: float = 5
    cap: float = 3600
    jitter: float = 0.1

    def delays(self, retries: int) -> list[int]:
        out = []
        for n in range(retries):
            delay = min(self.cap, self.base * 2**n)
            # Jitter spreads retries of jobs that failed together (a provider
            # outage) so they do not all come back in the same second.
            delay += delay * self.jitter * random.random()  # noqa: S311 - not security
            out.append(max(1, round(delay)))
        return out


Backoff = Sequence[int] | Exponential | int | None


def backoff_delays(backoff: Backoff, retries: int) -> list[int]:
    """RQ's Retry intervals: exactly one per retry, the last value repeating
    (as Laravel does; RQ itself would repeat the *first* for a short list)."""
    if retries <= 0:
        return []
    if backoff is None:
        return [0] * retries  # Laravel's default: retry at once
    if isinstance(backoff, Exponential):
        return backoff.delays(retries)
    if isinstance(backoff, int):
        return [backoff] * retries
    delays = [int(s) for s in backoff] or [0]
    return (delays + [delays[-1]] * retries)[:retries]


def _position(func: Callable[..., Any], name: str) -> int | None:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a builtin or C function: no signature to read
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for index, param in enumerate(params):
        if param.name == name:
            return index if param.kind in positional else None
    return None


@dataclass
class JobDefinition(Generic[P, R]):
    func: Callable[P, R]
    queue: str = "default"
    timeout: int | None = None
    tries: int | None = None
    backoff: Backoff = None
    unique_for: int | None = None
    unique_key: UniqueKey | None = None
    unique_until_processing: bool = False
    middleware: Sequence[Middleware] = ()
    on_failure: FailureHook | None = None
    permanent: tuple[type[BaseException], ...] = (PermanentError,)
    result_ttl: int = 0
    tenant_arg: str | None = None
    name: str = field(init=False)
    # Where the tenant id sits among positional arguments, found once here
    # rather than by inspecting the signature for every finished job.
    tenant_position: int | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = f"{self.func.__module__}.{self.func.__qualname__}"
        self.tenant_position = _position(self.func, self.tenant_arg or "tenant_id")
        if self.tries is not None and self.tries < 1:
            raise ValueError(f"{self.name}: tries must be at least 1, got {self.tries}")
        if self.unique_key is not None and not self.unique_for:
            raise ValueError(f"{self.name}: unique_key needs unique_for (seconds)")
        functools.update_wrapper(self, self.func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def tenant_id(self, args: Sequence[Any], kwargs: dict[str, Any]) -> int | None:
        """The tenant of one dispatch (``tenant_arg``, else an argument named
        ``tenant_id``) for the ledger, metrics and recent list; None for jobs of no tenant."""
        name = self.tenant_arg or "tenant_id"
        if name in kwargs:
            value = kwargs[name]
        elif self.tenant_position is not None and self.tenant_position < len(args):
            value = args[self.tenant_position]
        else:
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def is_unique(self) -> bool:
        return bool(self.unique_for)

    def lock_key(self, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
        """The unique key of one dispatch: the declared function, or all arguments."""
        if self.unique_key is not None:
            return str(self.unique_key(*args, **kwargs))
        import json

        return json.dumps([list(args), kwargs], sort_keys=True, separators=(",", ":"))

    def on_queue(self, queue: str) -> JobDefinition[P, R]:
        """The same job sent to another queue (Laravel's ``onQueue``)."""
        import copy

        other = copy.copy(self)
        other.queue = queue
        return other

    def with_options(
        self, *, queue: str | None = None, timeout: int | None = None, tries: int | None = None
    ) -> JobDefinition[P, R]:
        """The same job with another queue, timeout or tries for one route of
        work (the outbox's per-route delivery policy); None keeps the job's own."""
        import copy

        if tries is not None and tries < 1:
            raise ValueError(f"{self.name}: tries must be at least 1, got {tries}")
        other = copy.copy(self)
        other.queue = queue or self.queue
        other.timeout = timeout if timeout is not None else self.timeout
        other.tries = tries if tries is not None else self.tries
        return other

    def unique_lock_key(self, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
        """The Redis key of this dispatch's unique lock."""
        from queueing.keys import unique_lock

        return unique_lock(self.name, self.lock_key(args, kwargs))

    # Dispatching lives in queueing.dispatch; these are the ergonomic entry points.
    def dispatch(
        self,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Dispatch:
        from queueing.dispatch import dispatch

        return dispatch(self, args, kwargs)

    def dispatch_in(self, delay: timedelta, *args: P.args, **kwargs: P.kwargs) -> Dispatch:
        from queueing.dispatch import dispatch

        return dispatch(self, args, kwargs, delay=delay)

    def dispatch_at(self, when: datetime, *args: P.args, **kwargs: P.kwargs) -> Dispatch:
        from queueing.dispatch import dispatch

        return dispatch(self, args, kwargs, at=when)

    def dispatch_if(self, condition: object, *args: P.args, **kwargs: P.kwargs) -> Dispatch | None:
        return self.dispatch(*args, **kwargs) if condition else None

    def dispatch_unless(self, condition: object, *args: P.args, **kwargs: P.kwargs) -> Dispatch | None:
        return None if condition else self.dispatch(*args, **kwargs)

    def dispatch_many(self, calls: Sequence[Sequence[Any]], *, chunk_size: int = 1000) -> list[Dispatch]:
        from queueing.dispatch import dispatch_many

        return dispatch_many(self, calls, chunk_size=chunk_size)


_registry: dict[str, JobDefinition[Any, Any]] = {}


def job(
    *,
    queue: str = "default",
    timeout: int | None = None,
    tries: int | None = None,
    backoff: Backoff = None,
    unique_for: int | None = None,
    unique_key: UniqueKey | None = None,
    unique_until_processing: bool = False,
    middleware: Sequence[Middleware] = (),
    on_failure: FailureHook | None = None,
    permanent: tuple[type[BaseException], ...] = (PermanentError,),
    result_ttl: int = 0,
    tenant_arg: str | None = None,
    formerly: Sequence[str] = (),
) -> Callable[[Callable[P, R]], JobDefinition[P, R]]:
    """Declare a background job. ``tries`` counts attempts in total (3 = 1 + 2 retries).

    ``tenant_arg`` names the argument holding the tenant id (ledger, metrics).
    ``formerly`` lists the dotted names the job had before it moved: jobs
    queued under them run this one (import its module in ``AppConfig.ready()``).
    """

    def wrap(func: Callable[P, R]) -> JobDefinition[P, R]:
        definition = JobDefinition(
            func=func,
            queue=queue,
            timeout=timeout,
            tries=tries,
            backoff=backoff,
            unique_for=unique_for,
            unique_key=unique_key,
            unique_until_processing=unique_until_processing,
            middleware=tuple(middleware),
            on_failure=on_failure,
            permanent=permanent,
            result_ttl=result_ttl,
            tenant_arg=tenant_arg,
        )
        _registry[definition.name] = definition
        for old in formerly:
            _registry[old] = definition
        return definition

    return wrap


def registered() -> list[JobDefinition[Any, Any]]:
    """Every job definition imported so far (``queueing.drain.autodiscover_jobs`` imports them all)."""
    return list({id(d): d for d in _registry.values()}.values())  # once each, aliases (``formerly``) aside


def definition_for(func_name: str) -> JobDefinition[Any, Any] | None:
    """The declared options of a job by its dotted name (imports the module if needed)."""
    found = _registry.get(func_name)
    if found is None:
        module, _, _attr = func_name.rpartition(".")
        if module:
            import importlib

            try:
                importlib.import_module(module)
            except ImportError:
                return None
            found = _registry.get(func_name)
    return found
