"""How many processes each queue of an ``auto`` supervisor wants: pure functions of
the queues' loads and the configuration, testable without Redis or processes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from queueing.supervisor.config import SupervisorConfig


@dataclass(frozen=True)
class QueueLoad:
    depth: int  # jobs ready on the queue now
    wait: float = 0.0  # estimated seconds to clear it: depth × average runtime (0 when unknown)
    paused: bool = False


@dataclass(frozen=True)
class Decision:
    at: float
    queue: str
    before: int
    after: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "queue": self.queue, "from": self.before, "to": self.after, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    targets: dict[str, int]
    decisions: list[Decision]

    @property
    def scaled(self) -> bool:
        return bool(self.decisions)


def estimate_waits(depths: Mapping[str, int], runtimes: Mapping[str, float | None]) -> dict[str, float]:
    """Seconds to clear each queue (depth × average runtime). A queue whose
    runtime is not known yet borrows the mean of the known ones, so a cold
    queue is not starved by a warm one; with none known every job counts 1 s."""
    known = [r for r in runtimes.values() if r is not None]
    fallback = sum(known) / len(known) if known else 1.0
    return {q: depth * (runtimes.get(q) or fallback) for q, depth in depths.items()}


def desired_processes(loads: Mapping[str, QueueLoad], config: SupervisorConfig) -> dict[str, int]:
    """Horizon's split: each queue's share of the supervisor's work times
    max_processes, at least min_processes, and never more than min plus the
    jobs it has waiting (a process for a job that is not there only idles).
    A paused queue's jobs cannot run, so its share goes to the others.

    Rounding up can ask for more than max_processes in total; then the
    queues with the most are trimmed, down to min_processes, or to 1 for a
    queue with waiting jobs, so with ``min_processes: 0`` a small queue is
    not starved by a big one while max_processes has room for both."""
    active = {q: load for q, load in loads.items() if not load.paused}
    total_wait = sum(load.wait for load in active.values())
    total_depth = sum(load.depth for load in active.values())
    # What one queue can have while every other keeps its minimum.
    ceiling = config.max_processes - config.min_processes * (len(config.queues) - 1)
    desired: dict[str, int] = {}
    for queue in config.queues:
        load = loads[queue]
        if load.paused:
            share = 0.0
        elif config.auto_scaling_strategy == "time" and total_wait > 0:
            share = load.wait / total_wait
        elif total_depth > 0:
            share = load.depth / total_depth
        else:
            share = 0.0
        wanted = min(math.ceil(share * config.max_processes), config.min_processes + load.depth, ceiling)
        desired[queue] = max(config.min_processes, wanted)
    floor = {q: max(config.min_processes, 1 if q in active and active[q].depth else 0) for q in config.queues}
    while sum(desired.values()) > config.max_processes:
        above = [q for q in config.queues if desired[q] > floor[q]]
        if not above:
            break  # more queues with work than processes: the first ones in line get them
        # The most processes first; of equals, the one with the least work gives one up.
        trimmed = max(above, key=lambda q: (desired[q] - floor[q], -loads[q].wait, -loads[q].depth))
        desired[trimmed] -= 1
    return desired


def balance(
    current: Mapping[str, int],
    loads: Mapping[str, QueueLoad],
    config: SupervisorConfig,
    *,
    now: float,
    last_scaled_at: float | None,
    retiring: Mapping[str, int] | None = None,
) -> Plan:
    """One auto-balancing step: new process targets per queue and why.

    At most ``balance_max_shift`` processes are added to or removed from a
    queue per step, and no step is taken within ``balance_cooldown`` seconds
    of the last one that changed something, so a burst does not make the
    pools thrash. Queues that want fewer go first; the processes they give
    up (and the ``retiring`` ones, scaled down earlier and still finishing a
    job) count toward ``max_processes`` until they have exited, so the room
    they free goes to the queues that want more in a later step. Of those, a
    queue with waiting jobs and no process goes first.
    """
    targets = dict(current)
    if last_scaled_at is not None and now - last_scaled_at < config.balance_cooldown:
        return Plan(targets, [])
    desired = desired_processes(loads, config)
    leaving = sum((retiring or {}).values())

    def order(queue: str) -> tuple[int, int]:
        have, want = current[queue], desired[queue]
        if want < have:
            return (0, want)
        starving = have == 0 and loads[queue].depth > 0 and not loads[queue].paused
        return (1 if starving else 2, want)

    decisions: list[Decision] = []
    for queue in sorted(config.queues, key=order):
        have, want = targets[queue], desired[queue]
        if want > have:
            held = sum(max(targets[q], current[q]) for q in config.queues) + leaving
            room = max(0, config.max_processes - held)
            new = have + min(want - have, room, config.balance_max_shift)
        elif want < have:
            new = max(want, have - config.balance_max_shift)
        else:
            continue
        if new != have:
            targets[queue] = new
            decisions.append(Decision(now, queue, have, new, _reason(loads[queue], config, have, want, new)))
    return Plan(targets, decisions)


def _reason(load: QueueLoad, config: SupervisorConfig, have: int, want: int, new: int) -> str:
    if load.paused:
        seen = "paused"
    elif config.auto_scaling_strategy == "time":
        seen = f"depth {load.depth}, wait {load.wait:.1f}s"
    else:
        seen = f"depth {load.depth}"
    reason = f"{seen}: wants {want}"
    if new != want:
        limited_by_max = new > have and new - have < config.balance_max_shift
        reason += f" (max_processes {config.max_processes} reached)" if limited_by_max else " (max shift per step)"
    return reason
