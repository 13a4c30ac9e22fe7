"""The dashboard's "Layout" section: the queue layout in effect, per physical
queue its timeout, tries, the logical queues routed to it and what lands
there (docs/queues/index.md). Static per process: the layout is read at start."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from queueing.definitions import registered
from queueing.drain import autodiscover_jobs
from queueing.scheduler import scheduled_work
from queueing.topology import declared_work, default_tries, routes, work_by_queue


def layout_rows() -> dict[str, Any]:
    autodiscover_jobs()
    layout = getattr(settings, "QUEUE_LAYOUT", None)
    routed: dict[str, list[str]] = {}
    for logical, physical in sorted(routes().items()):
        if logical != physical:
            routed.setdefault(physical, []).append(logical)
    work = work_by_queue(declared_work(registered()) + scheduled_work())
    return {
        "name": getattr(layout, "name", "settings"),
        "path": str(getattr(layout, "path", "")),
        "queues": [
            {
                "name": name,
                "timeout": conf.get("DEFAULT_TIMEOUT"),
                "tries": default_tries(name),
                "routed": routed.get(name, []),
                "work": work.get(name, []),
            }
            for name, conf in settings.RQ_QUEUES.items()
        ],
    }
