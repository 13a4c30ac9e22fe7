"""``manage.py check`` for the queue runtime's configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured

from queueing.definitions import registered
from queueing.drain import autodiscover_jobs, longest_job
from queueing.scheduler import scheduled_work
from queueing.supervisor import parse_supervisors
from queueing.topology import declared_work, routes, unrouted


def drain_covers_jobs(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    """A configured QUEUE_SUPERVISOR_DRAIN must outlast the longest job its pools take.

    Unset, queue_supervise derives it (queueing/drain.py), so only a number
    set by hand can fall short.
    """
    drain = getattr(settings, "QUEUE_SUPERVISOR_DRAIN", None)
    if drain is None:
        return []
    try:
        supervisors = parse_supervisors(settings.QUEUE_SUPERVISORS, settings.RQ_QUEUES)
    except ImproperlyConfigured:
        return []  # queue_supervise names that problem itself when it starts
    autodiscover_jobs()
    longest = longest_job(supervisors, settings.RQ_QUEUES, registered())
    if longest is None or float(drain) >= longest.drain:
        return []
    return [
        Warning(
            f"QUEUE_SUPERVISOR_DRAIN is {float(drain):g} s, but supervisor {longest.supervisor!r} can take "
            f"{longest.what} with a {longest.seconds} s timeout: on every stop or deploy such a job is "
            "interrupted and starts over.",
            hint=f"Unset QUEUE_SUPERVISOR_DRAIN (it is then derived: {longest.drain} s) or set it to at least "
            f"{longest.drain}; supervisord's stopwaitsecs for queue_supervise must be longer still.",
            id="queueing.W001",
        )
    ]


def queues_are_routed(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    """Every job, outbox route and schedule entry names a routed logical queue.

    (That every queue has a pool is the layout file's own check, at load; a
    host's QUEUE_SUPERVISORS_JSON may serve only some queues on purpose.)
    """
    autodiscover_jobs()
    declared = declared_work(registered()) + scheduled_work()
    layout = getattr(settings, "QUEUE_LAYOUT", None)
    where = f"the [routes] of {layout.path}" if layout is not None else "settings.QUEUE_ROUTES"
    return [
        Error(
            f"{found.what} declares queue {found.queue!r}, which has no route: its dispatches would fail.",
            hint=f'Add `{found.queue} = "<queue>"` to {where}, or declare one of: {", ".join(routes())}.',
            id="queueing.E001",
        )
        for found in unrouted(declared)
    ]


def retention_days_are_known(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    """RETENTION_DAYS names registered kinds, each with whole days of at least 1."""
    from queueing.retention import kinds

    known = {kind.name for kind in kinds()}
    errors: list[CheckMessage] = []
    for name, days in settings.RETENTION_DAYS.items():
        if name not in known:
            errors.append(
                Error(
                    f"RETENTION_DAYS names {name!r}, which is not a kind of record the purge knows.",
                    hint=f"One of: {', '.join(sorted(known))} (`manage.py purge --dry-run` lists them).",
                    id="queueing.E002",
                )
            )
        elif not isinstance(days, int) or days < 1:
            errors.append(
                Error(
                    f"RETENTION_DAYS: {name}={days!r} is not a whole number of days of at least 1.",
                    hint="To keep a kind longer raise its days; no kind can be purged of rows younger than a day.",
                    id="queueing.E003",
                )
            )
    return errors
