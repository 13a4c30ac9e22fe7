"""Unique-job locks (Laravel's ShouldBeUnique): one queued-or-running job per key.

A lock is a Redis key holding the owning job's id, set with NX and a TTL of
``unique_for`` seconds, so a lost worker can never hold it forever.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from queueing import keys, scripts


@dataclass(frozen=True)
class UniqueLock:
    key: str
    job_id: str
    ttl: int


def acquire(conn: Redis, *, lock: str, job_id: str, seconds: int) -> str | None:
    """Take the lock for ``job_id``; on failure return the id of the job holding it."""
    if conn.set(lock, job_id, nx=True, ex=seconds):
        return None
    holder = conn.get(lock)
    return holder.decode() if isinstance(holder, bytes) else str(holder or "")


def release(conn: Redis, *, lock_key: str, job_id: str) -> bool:
    """Release the lock if ``job_id`` still owns it (it may have expired and been retaken)."""
    return scripts.release(conn, lock_key, job_id)


def list_locks(conn: Redis) -> list[UniqueLock]:
    locks = []
    for raw in conn.scan_iter(match=keys.UNIQUE_PATTERN, count=500):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        with conn.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            value, ttl = pipe.execute()
        if value is not None:
            locks.append(UniqueLock(key=key, job_id=value.decode(), ttl=int(ttl)))
    return sorted(locks, key=lambda lock: lock.key)


def force_release(conn: Redis, lock_key: str) -> bool:
    """Operator override: drop a lock whoever holds it."""
    if not lock_key.startswith(keys.PREFIX + ":unique:"):
        raise ValueError(f"not a unique-job lock: {lock_key!r}")
    return bool(conn.delete(lock_key))
