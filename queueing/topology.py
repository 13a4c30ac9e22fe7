"""Logical queues to physical ones: the one place a job's declared queue
becomes the Redis list it is pushed on (Laravel 13's ``Queue::route()``).

Jobs declare what their work *is* (``@job(queue="notifications")``); the
layout (settings.QUEUE_ROUTES, from the file QUEUE_LAYOUT names) says where
that runs on this deployment. Splitting ``notifications`` off ``default`` is
a change of configuration only. docs/queues/index.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings


class UnroutedQueue(LookupError):
    """A job named a logical queue the layout does not route."""


def routes() -> Mapping[str, str]:
    """Logical queue -> physical queue; every physical queue routes to itself."""
    configured: Mapping[str, str] | None = getattr(settings, "QUEUE_ROUTES", None)
    if configured is None:  # a settings module without a layout: queues only
        return {name: name for name in settings.RQ_QUEUES}
    return configured


def physical_queue(logical: str) -> str:
    """The queue ``logical`` runs on; UnroutedQueue names the fix when it has no route."""
    found = routes().get(logical)
    if found is None:
        raise UnroutedQueue(
            f'queue {logical!r} has no route in the queue layout {_layout_name()}: add `{logical} = "<queue>"` '
            f"to its [routes] (queues: {', '.join(settings.RQ_QUEUES)})"
        )
    return found


def default_tries(physical: str) -> int | None:
    """Attempts for a job on ``physical`` that declares none (None: the worker's --tries)."""
    tries: Mapping[str, int] = getattr(settings, "QUEUE_DEFAULT_TRIES", {})
    return tries.get(physical)


def _layout_name() -> str:
    layout = getattr(settings, "QUEUE_LAYOUT", None)
    return repr(getattr(layout, "name", "configured"))


# Work dispatched on queues other than a job's own (the outbox's routes), from
# the apps that own it: name -> () -> [(what, logical queue)].
_sources: dict[str, Callable[[], list[tuple[str, str]]]] = {}


def register_source(name: str, declared: Callable[[], list[tuple[str, str]]]) -> None:
    """Call from ``AppConfig.ready()``: ``declared()`` lists (what, logical queue) pairs."""
    _sources[name] = declared


def declared_work(definitions: Iterable[Any]) -> list[tuple[str, str]]:
    """Every (what, logical queue): each job's own queue, then the registered sources'."""
    out = [(f"job {d.name}", d.queue) for d in definitions]
    for declared in _sources.values():
        out += declared()
    return out


@dataclass(frozen=True)
class Unrouted:
    what: str  # "job orders.jobs.x", "outbox route order.paid -> handler", "schedule entry y"
    queue: str


def unrouted(declared: Iterable[tuple[str, str]]) -> list[Unrouted]:
    """The (what, logical queue) pairs whose queue has no route."""
    table = routes()
    return [Unrouted(what, queue) for what, queue in declared if queue not in table]


def work_by_queue(declared: Iterable[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Physical queue -> the (what, logical queue) pairs routed there (unrouted ones left out)."""
    table = routes()
    out: dict[str, list[tuple[str, str]]] = {name: [] for name in settings.RQ_QUEUES}
    for what, logical in declared:
        physical = table.get(logical)
        if physical is not None:
            out.setdefault(physical, []).append((what, logical))
    return {queue: sorted(items) for queue, items in out.items()}
