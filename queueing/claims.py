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
    if not queues:
        return None
    execution = uuid.uuid4().hex
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
            execution,
            "" if borrow_max_timeout is None else borrow_max_timeout,
            2 if own_first is None or queues[0].name == own_first else 1,
            Job.redis_job_namespace_prefix,
            worker_key,
        ],
    )
    if result is None:
        return None
    index, job_id, execution, flat = result
    job_id, execution = as_text(job_id), as_text(execution)
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return Claimed(queues[int(index) - 1], job_id, f"{job_id}:{execution}", fields)


def unclaim(pipe: Any, queue: Queue, member: str) -> None:
    """Drop an attempt's claim and its display entry in RQ's StartedJobRegistry."""
    pipe.zrem(keys.claims(queue.name), member)
    pipe.zrem(queue.started_job_registry.key, member)


def takeover(conn: Redis, queue: Queue, member: str, *, cutoff: float, hold: float) -> bool:
    """The reaper's move: push an expired claim ``hold`` seconds ahead, if it is
    still expired (at or before ``cutoff``); False when someone else got there."""
    return scripts.takeover(conn, keys.claims(queue.name), member, cutoff, time.time() + hold)


class Heartbeat:
    """The thread that keeps the running job's claim (and the worker's key) alive.

    A thread, because the main thread is busy running the job; it touches only
    the registry score (ZADD XX), never job state.
    """

    def __init__(self, conn: Redis, worker_key: str, worker_ttl: int) -> None:
        self.conn = conn
        self.worker_key = worker_key
        self.worker_ttl = worker_ttl
        self.current: tuple[str, str] | None = None  # (claims key, member) of the job in hand
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, queue: Queue, member: str) -> None:
        self.current = (keys.claims(queue.name), member)

    def release(self) -> None:
        self.current = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="claim-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            current = self.current
            if current is None:
                continue
            try:
                with self.conn.pipeline(transaction=False) as pipe:
                    pipe.zadd(current[0], {current[1]: time.time() + CLAIM_TTL}, xx=True)
                    # A job may outlive the worker key's TTL: keep the worker visible.
                    pipe.expire(self.worker_key, self.worker_ttl + 60)
                    pipe.execute()
            except Exception:  # a Redis blip: the next beat tries again
                log.warning("heartbeat for %s failed", current[1], exc_info=True)
