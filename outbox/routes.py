"""The routing table: which handlers (and on which queue) an event type goes to.

Filled from above — domain apps call :func:`route` in their ``AppConfig.ready``
— so the outbox never imports a domain app. A handler is the dotted path of a
function taking one :class:`Event`; it runs inside the transaction that
records its inbox entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Route:
    event_type: str
    handler: str  # dotted path of ``def handler(event: Event) -> None``
    queue: str = "default"
    # The delivery job's own timeout (seconds) and tries where this handler's
    # work needs other ones than outbox.jobs.deliver's (300 s, 5 tries).
    timeout: int | None = None
    tries: int | None = None
    # Messages per delivery job for this route (1: a job each); None takes
    # OUTBOX_MESSAGES_PER_JOB. A slow handler (seconds of network per message)
    # may want 1, so a burst spreads over workers instead of queueing in one job.
    batch: int | None = None

    @property
    def delivery(self) -> tuple[str, str, int | None, int | None, int | None]:
        """How this route's messages are delivered, apart from the message:
        routes of different events that agree on it share batches."""
        return (self.handler, self.queue, self.timeout, self.tries, self.batch)


@dataclass(frozen=True)
class Event:
    """What a handler receives: the message, read back from the outbox."""

    id: int
    event_type: str
    aggregate_type: str
    aggregate_id: str
    tenant_id: int | None
    payload: dict[str, Any]
    headers: dict[str, Any]
    created_at: datetime


_routes: dict[str, list[Route]] = {}
# A handler's earlier dotted paths → its current one: delivery jobs queued (and
# inbox rows written) before a handler moved still find it, and run it once.
_former: dict[str, str] = {}


def route(
    event_type: str,
    handler: str,
    *,
    queue: str = "default",
    timeout: int | None = None,
    tries: int | None = None,
    batch: int | None = None,
    formerly: Sequence[str] = (),
) -> None:
    """Send ``event_type`` messages to ``handler`` (idempotent: registering twice is once).

    ``timeout`` and ``tries`` override the delivery job's for this route (per
    message, batched or not); ``batch`` caps the messages per delivery job;
    ``formerly`` lists the paths the handler had before it moved.
    """
    if tries is not None and tries < 1:
        raise ValueError(f"route {event_type} -> {handler}: tries must be at least 1, got {tries}")
    if batch is not None and batch < 1:
        raise ValueError(f"route {event_type} -> {handler}: batch must be at least 1, got {batch}")
    entry = Route(event_type, handler, queue, timeout, tries, batch)
    routes = _routes.setdefault(event_type, [])
    if entry not in routes:
        routes.append(entry)
    for old in formerly:
        _former[old] = handler


def current_handler(path: str) -> str:
    """The handler now at ``path``, or that it moved to."""
    return _former.get(path, path)


def handler_names(handler: str) -> list[str]:
    """Every path ``handler`` was known by, the current one first."""
    return [handler, *(old for old, new in _former.items() if new == handler)]


def routes_for(event_type: str) -> list[Route]:
    return list(_routes.get(event_type, ()))


def declared_queues() -> list[tuple[str, str]]:
    """(what, logical queue) of every route: the delivery jobs it dispatches land there."""
    return [
        (f"outbox route {event_type} -> {r.handler}", r.queue)
        for event_type, entries in _routes.items()
        for r in entries
    ]


def all_routes() -> dict[str, list[Route]]:
    return {k: list(v) for k, v in _routes.items()}
