"""Unique-job locks (Laravel's ShouldBeUnique): one queued-or-running job per key.

A lock is a Redis key holding the owning job's id, set with NX and a TTL of
``unique_for`` seconds, so a lost worker can never hold it forever.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from lib.text import as_text
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


def scan_locks(
    conn: Redis, *, limit: int | None = None, scan_steps: int | None = None
) -> tuple[list[UniqueLock], bool]:
    """The unique-job locks, sorted by key, and whether some were left out.

    The values come a pipeline per SCAN batch, never a round trip per lock (a
    queue with 100k unique jobs waiting would otherwise cost 100k). ``limit``
    stops after that many locks; ``scan_steps`` caps the SCAN calls, because
    SCAN walks the whole keyspace (job hashes, rate-limit windows…) to find
    the matches: a dashboard refresh must cost a bounded number of round trips
    however big Redis is. Either cut makes the second value True.
    """
    found: list[UniqueLock] = []
    cursor, steps, more = 0, 0, False
    while True:
        cursor, batch = conn.scan(cursor=cursor, match=keys.UNIQUE_PATTERN, count=1000)
        steps += 1
        names = [as_text(raw) for raw in batch]
        if limit is not None and len(found) + len(names) > limit:
            names, more = names[: limit - len(found)], True
        if names:
            with conn.pipeline(transaction=False) as pipe:
                for key in names:
                    pipe.get(key)
                    pipe.ttl(key)
                values = pipe.execute()
            found += [
                UniqueLock(key=key, job_id=as_text(value), ttl=int(ttl))
                for key, value, ttl in zip(names, values[::2], values[1::2], strict=True)
                if value is not None  # expired between SCAN and GET
            ]
        if more or cursor == 0:
            break
        if scan_steps is not None and steps >= scan_steps:
            more = True
            break
    return sorted(found, key=lambda lock: lock.key), more


def list_locks(conn: Redis) -> list[UniqueLock]:
    """Every unique-job lock, sorted by key (``queue_locks``)."""
    return scan_locks(conn)[0]


def force_release(conn: Redis, lock_key: str) -> bool:
    """Operator override: drop a lock whoever holds it."""
    if not lock_key.startswith(keys.PREFIX + ":unique:"):
        raise ValueError(f"not a unique-job lock: {lock_key!r}")
    return bool(conn.delete(lock_key))
