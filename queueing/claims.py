"""The claim protocol: how a worker takes a job so that a kill at any instant
loses nothing. One module owns it (docs/runtime.md, "The worker").

- **claim**: one Lua call pops the first job of the worker's queues, in strict
  queue order, and records a claim ``<job id>:<execution>`` in
  ``vito:claims:<queue>`` (score: its expiry) and in RQ's StartedJobRegistry
  (score +inf, display only, so RQ's cleanup never settles it);
- **heartbeat**: while the job runs, a thread pushes the expiry CLAIM_TTL
  seconds ahead every HEARTBEAT_EVERY seconds;
- **unclaim**: settling an attempt drops both entries, on the settling pipeline;
- **takeover**: the reaper moves an expired claim's expiry first, so of two
  reapers exactly one settles it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.utils import utcformat

from lib.text import as_text
from queueing import keys, scripts

log = logging.getLogger("queueing.worker")

# A killed worker's job is found CLAIM_TTL (+ up to the reaper's period)
# seconds after its last heartbeat: the time to recovery. Six beats per TTL
# leave room for a busy machine (or a thread held up by the GIL) to miss five
# in a row before a live job is taken for dead.
CLAIM_TTL = 30  # seconds a claim lives without a heartbeat
HEARTBEAT_EVERY = 5  # seconds between claim extensions while a job runs


@dataclass(frozen=True)
class Claimed:
    queue: Queue
    job_id: str
    member: str  # "<job id>:<execution>", the claim's member in both sorted sets
    fields: dict[Any, Any]  # the job hash, read in the same call


def claim(
    conn: Redis,
    queues: Sequence[Queue],
    *,
    worker_name: str,
    worker_key: str,
    started_at: datetime,
    borrow_max_timeout: int | None = None,
    own_first: str | None = None,
) -> Claimed | None:
    """Take the first job of ``queues`` (in order) and claim it, atomically.

    ``borrow_max_timeout``: from the queues after the worker's ``own_first``
    (from all of them when that one is paused, so not in ``queues``), only a
    head job whose timeout is at most this many seconds (the high worker's rule)."""
    found = claim_many(
        conn,
        queues,
        1,
        worker_name=worker_name,
        worker_key=worker_key,
        started_at=started_at,
        borrow_max_timeout=borrow_max_timeout,
        own_first=own_first,
    )
    return found[0] if found else None


def claim_many(
    conn: Redis,
    queues: Sequence[Queue],
    count: int,
    *,
    worker_name: str,
    worker_key: str,
    started_at: datetime,
    borrow_max_timeout: int | None = None,
    own_first: str | None = None,
) -> list[Claimed]:
    """Up to ``count`` jobs, the first ones of ``queues`` in order, each with its
    own claim, in one atomic call (a worker with that many free job threads)."""
    if not queues:
        return []
    result = scripts.claim(
        conn,
        [q.key for q in queues],
        [q.started_job_registry.key for q in queues],
        [keys.claims(q.name) for q in queues],
        [
            time.time(),
            time.time() + CLAIM_TTL,
            worker_name,
            utcformat(started_at),
            uuid.uuid4().hex,
            "" if borrow_max_timeout is None else borrow_max_timeout,
            2 if own_first is None or queues[0].name == own_first else 1,
            Job.redis_job_namespace_prefix,
            worker_key,
            count,
        ],
    )
    out = []
    for index, raw_id, raw_execution, flat in result or ():
        job_id, execution = as_text(raw_id), as_text(raw_execution)
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        out.append(Claimed(queues[int(index) - 1], job_id, f"{job_id}:{execution}", fields))
    return out


def unclaim(pipe: Any, queue: Queue, member: str) -> None:
    """Drop an attempt's claim and its display entry in RQ's StartedJobRegistry."""
    pipe.zrem(keys.claims(queue.name), member)
    pipe.zrem(queue.started_job_registry.key, member)


def takeover(conn: Redis, queue: Queue, member: str, *, cutoff: float, hold: float) -> bool:
    """The reaper's move: push an expired claim ``hold`` seconds ahead, if it is
    still expired (at or before ``cutoff``); False when someone else got there."""
    return scripts.takeover(conn, keys.claims(queue.name), member, cutoff, time.time() + hold)


class Heartbeat:
    """The thread that keeps the running jobs' claims (and the worker's key) alive.

    A thread, because the job threads are busy running jobs; it touches only
    the registry scores (ZADD XX), never job state. With ``--concurrency`` N
    it holds up to N claims and extends them all in one round trip.
    """

    def __init__(self, conn: Redis, worker_key: str, worker_ttl: int) -> None:
        self.conn = conn
        self.worker_key = worker_key
        self.worker_ttl = worker_ttl
        self.held: dict[str, str] = {}  # member -> claims key, for every job in hand
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, queue: Queue, member: str) -> None:
        self.held[member] = keys.claims(queue.name)

    def release(self, member: str) -> None:
        self.held.pop(member, None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="claim-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            held = list(self.held.items())  # a copy: job threads add and drop claims meanwhile
            if not held:
                continue
            try:
                with self.conn.pipeline(transaction=False) as pipe:
                    expiry = time.time() + CLAIM_TTL
                    for member, claims_key in held:
                        pipe.zadd(claims_key, {member: expiry}, xx=True)
                    # A job may outlive the worker key's TTL: keep the worker visible.
                    pipe.expire(self.worker_key, self.worker_ttl + 60)
                    pipe.execute()
            except Exception:  # a Redis blip: the next beat tries again
                log.warning("heartbeat for %d claim(s) failed", len(held), exc_info=True)
