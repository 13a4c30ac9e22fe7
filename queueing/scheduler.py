"""The periodic schedule (Laravel's ``schedule:work``): one table, one loop.

Entries live in ``config/schedule.py`` (settings.QUEUE_SCHEDULE). Each tick of
each entry is claimed in Redis with ``SET NX`` before it is dispatched, so any
number of scheduler processes can run (for availability) and every tick is
still enqueued exactly once. The loop also promotes due delayed jobs and runs
the reaper, so both keep working when every worker is busy or gone.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter
from django.conf import settings
from django.utils.module_loading import import_string
from redis import Redis

from queueing import keys, reaper, scripts
from queueing.definitions import definition_for

log = logging.getLogger(__name__)

TICK_TTL = 7 * 24 * 3600  # a claimed tick is remembered for a week


@dataclass(frozen=True)
class Entry:
    """Run ``job`` (a @job's dotted name) on a cron expression or every N seconds."""

    name: str
    job: str
    cron: str | None = None
    every: int | None = None
    args: tuple[Any, ...] = field(default_factory=tuple)
    queue: str | None = None  # default: the job's own queue

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ValueError(f"schedule entry {self.name!r}: give exactly one of cron= or every=")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"schedule entry {self.name!r}: invalid cron expression {self.cron!r}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"schedule entry {self.name!r}: every= must be at least 1 second")

    def ticks(self, after: float, until: float) -> list[int]:
        """Tick times (unix seconds) in ``(after, until]``."""
        if self.every is not None:
            first = int(after // self.every + 1) * self.every
            return list(range(first, int(until) + 1, self.every))
        out: list[int] = []
        assert self.cron is not None
        it = croniter(self.cron, datetime.fromtimestamp(after, UTC))
        while (nxt := int(it.get_next(float))) <= until:
            out.append(nxt)
        return out


def run_pending(conn: Redis, entries: Sequence[Entry], after: float, until: float) -> list[tuple[str, int]]:
    """Dispatch every tick due in ``(after, until]`` that no other scheduler claimed."""
    fired = []
    for entry in entries:
        for tick in entry.ticks(after, until):
            claim = keys.schedule_tick(entry.name, tick)
            if not conn.set(claim, os.getpid(), nx=True, ex=TICK_TTL):
                continue  # another scheduler has (or had) this tick
            definition = definition_for(entry.job)
            if definition is None:
                log.error("schedule entry %s: no @job named %s", entry.name, entry.job)
                continue
            if entry.queue:
                definition = definition.on_queue(entry.queue)
            try:
                definition.dispatch(*entry.args)
            except Exception:
                conn.delete(claim)  # let the next pass (or the other scheduler) try again
                raise
            log.info("schedule: %s tick %s dispatched", entry.name, datetime.fromtimestamp(tick, UTC).isoformat())
            fired.append((entry.name, tick))
    return fired


class Scheduler:
    def __init__(self, conn: Redis, entries: Sequence[Entry], queues: Sequence[Any]) -> None:
        self.conn = conn
        self.entries = list(entries)
        self.queues = list(queues)
        self._stop = False

    def stop(self, *_: Any) -> None:
        self._stop = True

    def loop(self, *, interval: float = 1.0, max_time: float | None = None) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        started = time.monotonic()
        last = time.time()
        next_reap = 0.0
        while not self._stop and (max_time is None or time.monotonic() - started < max_time):
            now = time.time()
            try:
                run_pending(self.conn, self.entries, last, now)
                last = now
                for queue in self.queues:
                    scripts.promote(self.conn, queue.scheduled_job_registry.key, queue.key, now)
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + 15
                    reaper.reap(self.conn, self.queues, worker_name="scheduler")
            except Exception:
                # Redis or PostgreSQL away: keep `last`, so missed ticks fire on recovery.
                log.exception("scheduler pass failed; retrying")
            time.sleep(max(0.05, interval - (time.time() - now)))


def scheduled_work() -> list[tuple[str, str]]:
    """(what, logical queue) of the schedule's entries that name their queue."""
    path = getattr(settings, "QUEUE_SCHEDULE", None)
    entries: Sequence[Entry] = import_string(path) if path else []
    return [(f"schedule entry {e.name}", e.queue) for e in entries if e.queue]
