"""How long a queue master must drain: the longest job its pools can take.

On stop, ``queue_supervise`` lets every child finish its job in hand for
``QUEUE_SUPERVISOR_DRAIN`` seconds and then interrupts it. A drain shorter than
a job's timeout cuts that job in half on every deploy (it is retried, but an
export or a campaign fan-out starts over), so the drain is derived from the
declared timeouts: ``QUEUE_SUPERVISOR_DRAIN`` unset means exactly that, and
``manage.py check`` warns when a configured drain (or the shipped supervisord
files' ``stopwaitsecs``) is shorter. docs/runtime.md, "The queue master".
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps

from queueing.definitions import JobDefinition, registered
from queueing.supervisor import SupervisorConfig
from queueing.topology import routes

# Past the longest timeout: the worker notices the timeout, settles the job
# (ledger, retry) and exits; the master's own interrupt comes 5 s before the end.
DRAIN_MARGIN = 30
# supervisord must wait longer than the master drains, or it SIGKILLs the master mid-drain.
STOPWAIT_MARGIN = 30


@dataclass(frozen=True)
class LongestJob:
    seconds: int
    what: str  # a job's dotted name, or "jobs without a timeout on <queue>"
    supervisor: str

    @property
    def drain(self) -> int:
        """The shortest drain that lets this job finish."""
        return self.seconds + DRAIN_MARGIN


def autodiscover_jobs() -> None:
    """Import every installed app's ``jobs`` module so each ``@job`` is registered."""
    for config in apps.get_app_configs():
        name = f"{config.name}.jobs"
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name)


def longest_job(
    supervisors: Iterable[SupervisorConfig],
    queues: Mapping[str, Mapping[str, Any]],
    definitions: Iterable[JobDefinition[Any, Any]],
) -> LongestJob | None:
    """The job with the longest effective timeout any pool can take.

    The effective timeout is the worker's: the job's own declaration, else the
    supervisor's ``timeout``, else the queue's ``DEFAULT_TIMEOUT``; a job
    enqueued without a declaration (plain RQ) gets the latter two. A pool that
    borrows (``borrow_max_timeout``) takes nothing longer from its later queues.
    """
    definitions = list(definitions)
    routed = routes()
    longest: LongestJob | None = None
    for config in supervisors:
        for index, queue in enumerate(config.queues):
            fallback = int(config.timeout or queues.get(queue, {}).get("DEFAULT_TIMEOUT") or 180)
            candidates = [(fallback, f"jobs without a timeout on {queue!r}")]
            candidates += [(int(d.timeout or fallback), d.name) for d in definitions if routed.get(d.queue) == queue]
            if index and config.borrow_max_timeout:
                candidates = [c for c in candidates if c[0] <= config.borrow_max_timeout]
            for seconds, what in candidates:
                if longest is None or seconds > longest.seconds:
                    longest = LongestJob(seconds, what, config.name)
    return longest


def required_drain(supervisors: Iterable[SupervisorConfig], queues: Mapping[str, Mapping[str, Any]]) -> int:
    """The drain ``queue_supervise`` uses when none is configured."""
    autodiscover_jobs()
    longest = longest_job(supervisors, queues, registered())
    return longest.drain if longest else DRAIN_MARGIN
