"""Operator controls over running workers, through Redis: pause, continue, restart."""

from __future__ import annotations

import time

from redis import Redis

from queueing import keys


def queue_pause(conn: Redis, queue: str) -> bool:
    """Workers stop taking jobs from ``queue`` (within a second); others keep flowing."""
    return bool(conn.sadd(keys.PAUSED_QUEUES, queue))


def queue_continue(conn: Redis, queue: str) -> bool:
    return bool(conn.srem(keys.PAUSED_QUEUES, queue))


def paused_queues(conn: Redis) -> set[str]:
    return {m.decode() if isinstance(m, bytes) else str(m) for m in conn.smembers(keys.PAUSED_QUEUES)}


def queue_restart(conn: Redis) -> float:
    """Every running worker finishes its job in hand and exits (its supervisor restarts it)."""
    stamp = time.time()
    conn.set(keys.RESTART_SIGNAL, repr(stamp))
    return stamp
