"""The masters' published state: the one module that reads and writes
``keys.SUPERVISOR_MASTERS`` (one JSON field per master, counted only while its
``supervisor_alive`` key lives) and the terminate signal. The master publishes
here every tick; the dashboard and ``queue_terminate`` read here."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from redis import Redis

from lib.text import as_text
from queueing import keys
from queueing.supervisor.children import Pool, SupervisorRun

if TYPE_CHECKING:
    from queueing.supervisor.master import Master

STATE_TTL = 15  # seconds the published state outlives a master that stopped updating it
TERMINATE_TTL = 24 * 3600  # the signal only concerns masters running when it is sent


def describe(master: Master) -> dict[str, Any]:
    """One master's published state: itself, and per supervisor its pools, processes and decisions."""
    now = time.time()
    paused = master.last.paused if master.last else set()
    return {
        "master": {
            "name": master.name,
            "host": master.host,
            "pid": os.getpid(),
            "started_at": master.started_at,
            "status": master.status,
            "updated_at": now,
            "drain": master.drain,
        },
        "supervisors": [_supervisor_state(master, run, paused) for run in master.runs],
    }


def _supervisor_state(master: Master, run: SupervisorRun, paused: set[str]) -> dict[str, Any]:
    config = run.config
    auto = config.balance == "auto"
    return {
        "name": config.name,
        "queues": list(config.queues),
        "balance": config.balance,
        "strategy": config.auto_scaling_strategy if auto else None,
        "min_processes": config.min_processes if auto else config.processes,
        "max_processes": config.max_processes if auto else config.processes,
        "paused": [q for q in config.queues if q in paused],
        "pools": [_pool_state(master, pool) for pool in run.pools],
        "decisions": [d.as_dict() for d in run.decisions],
    }


def _pool_state(master: Master, pool: Pool) -> dict[str, Any]:
    observed = master.last
    depth = sum(observed.depths.get(q, 0) for q in pool.queues) if observed else None
    oldest = max((observed.oldest.get(q, 0.0) for q in pool.queues), default=0.0) if observed else None
    runtime = master.runtimes.get(pool.queues[0]) if len(pool.queues) == 1 else None
    return {
        "queue": pool.label,
        "target": pool.target,
        "processes": [c.as_dict() for c in pool.children],
        "retiring": [c.as_dict() for c in pool.retiring],
        "restarts": pool.restarts,
        "depth": depth,
        "oldest_wait": oldest,
        "runtime": runtime,
    }


def publish(conn: Redis, name: str, state: dict[str, Any], *, started_at: float) -> None:
    """Our field of the masters hash, and the key that keeps it counted for
    STATE_TTL seconds; the hash itself goes when no master is left."""
    with conn.pipeline(transaction=True) as pipe:
        pipe.hset(keys.SUPERVISOR_MASTERS, name, json.dumps(state))
        pipe.set(keys.supervisor_alive(name), started_at, ex=STATE_TTL)
        pipe.expire(keys.SUPERVISOR_MASTERS, STATE_TTL)
        pipe.execute()


def prune(conn: Redis) -> None:
    """Drop the fields of masters that died without removing theirs (SIGKILL)."""
    _, dead = published(conn)
    if dead:
        conn.hdel(keys.SUPERVISOR_MASTERS, *dead)


def unpublish(conn: Redis, name: str) -> None:
    """Remove one master's state (only its own) so the dashboard no longer shows it."""
    with conn.pipeline(transaction=True) as pipe:
        pipe.hdel(keys.SUPERVISOR_MASTERS, name)
        pipe.delete(keys.supervisor_alive(name))
        pipe.execute()


def supervisor_state(conn: Redis) -> list[dict[str, Any]]:
    """The last published state (see ``Master.state``) of every live master,
    i.e. one that published in the last STATE_TTL seconds, by host and start
    time; [] when none is running."""
    return published(conn)[0]


def published(conn: Redis) -> tuple[list[dict[str, Any]], list[bytes | str]]:
    """The live masters' states, and the hash fields of the dead ones."""
    fields: dict[bytes | str, bytes | str] = conn.hgetall(keys.SUPERVISOR_MASTERS)
    if not fields:
        return [], []
    names = list(fields)
    alive = conn.mget([keys.supervisor_alive(as_text(name)) for name in names])
    states: list[dict[str, Any]] = []
    dead: list[bytes | str] = []
    for name, flag in zip(names, alive, strict=True):
        if flag is None:
            dead.append(name)
            continue
        try:
            state = json.loads(fields[name])
        except ValueError:  # not ours (or truncated): no master to speak of
            continue
        if isinstance(state, dict) and isinstance(state.get("master"), dict):
            states.append(state)
    states.sort(key=lambda s: (str(s["master"].get("host")), _number(s["master"].get("started_at"))))
    return states, dead


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def request_terminate(conn: Redis) -> float:
    """Every master running now drains and exits 0 (supervisord restarts it
    with the new code and configuration). Returns the signal's timestamp."""
    stamp = time.time()
    conn.set(keys.SUPERVISOR_TERMINATE, repr(stamp), ex=TERMINATE_TTL)
    return stamp
