"""``manage.py check`` for the queue runtime's configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.core.exceptions import ImproperlyConfigured

from queueing.definitions import registered
from queueing.drain import autodiscover_jobs, longest_job
from queueing.supervisor import parse_supervisors


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
