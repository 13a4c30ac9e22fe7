"""``manage.py queue_supervise``: one master process running the workers of
``QUEUE_SUPERVISORS`` (Laravel Horizon's master and supervisors).

Each supervisor is a set of queues and worker options; its processes are
``manage.py rqworker`` children grouped in pools:

- ``balance: "auto"``: one pool per queue (each child works ONE queue); every
  ``balance_cooldown`` seconds at most ``balance_max_shift`` processes move
  toward the queues with the most work (by estimated time to clear, or by
  depth), never below ``min_processes`` per queue nor above ``max_processes``
  in total;
- ``balance: "simple"``: one pool per queue, ``processes`` split evenly;
- ``balance: "off"``: one pool of ``processes`` children working all the
  queues in order.

Children recycle themselves (exit 0 at ``--max-jobs`` / ``--max-time`` /
``--memory`` or after ``queue_restart``) and the master starts a fresh one;
a child that dies is restarted (with a backoff when it keeps dying young).
SIGTERM/SIGINT or ``queue_terminate``: every child finishes its job in hand,
then the master exits 0, within ``QUEUE_SUPERVISOR_DRAIN`` seconds. Its state
is published every second in ``keys.SUPERVISOR_MASTERS`` (one field per
master, so several hosts can each run one) for the dashboard.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from django.core.exceptions import ImproperlyConfigured
from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job
from rq.queue import Queue
from rq.utils import utcparse
from rq.worker import Worker

from lib.text import as_text
from queueing import keys

log = logging.getLogger("queueing.supervisor")

Balance = Literal["auto", "simple", "off"]
Strategy = Literal["time", "size"]
T = TypeVar("T")

TICK = 1.0  # seconds between observations, scaling steps and state updates
STATE_TTL = 15  # seconds the published state outlives a master that stopped updating it
DRAIN_RETRY = 5.0  # draining with Redis away: seconds between attempts to publish
DRAIN_GUARD = 10.0  # ... and none this close to a drain deadline
PRUNE_EVERY = 60.0  # seconds between sweeps of the states of masters that died without removing theirs
TERMINATE_TTL = 24 * 3600  # the signal only concerns masters running when it is sent
DECISIONS_KEPT = 20
YOUNG_DEATH = 10.0  # a child dying sooner than this is crash-looping: back off
MAX_BACKOFF = 60.0
RUNTIME_WEIGHT = 0.3  # weight of the newest runtime sample in the per-queue moving average


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SupervisorConfig:
    name: str
    queues: tuple[str, ...]
    balance: Balance
    processes: int = 1  # simple / off
    min_processes: int = 1  # auto: per queue
    max_processes: int = 1  # auto: all queues together
    balance_max_shift: int = 1
    balance_cooldown: float = 3.0
    auto_scaling_strategy: Strategy = "time"
    tries: int = 1
    backoff: str | None = None
    timeout: int | None = None
    max_jobs: int | None = None
    max_time: float | None = None
    memory: float | None = None
    sleep: float = 3.0
    nice: int = 0

    def worker_flags(self) -> list[str]:
        """The ``rqworker`` options every child of this supervisor gets."""
        flags = ["--tries", str(self.tries), "--sleep", f"{self.sleep:g}"]
        optional = {
            "--backoff": self.backoff,
            "--timeout": self.timeout,
            "--max-jobs": self.max_jobs,
            "--max-time": self.max_time,
            "--memory": self.memory,
        }
        for flag, value in optional.items():
            if value is not None:
                flags += [flag, value if isinstance(value, str) else f"{value:g}"]
        return flags

    def initial_pools(self) -> dict[tuple[str, ...], int]:
        """Pool (queues one child works, in order) -> process count at start."""
        if self.balance == "off":
            return {self.queues: self.processes}
        if self.balance == "auto":
            return {(q,): self.min_processes for q in self.queues}
        share, extra = divmod(self.processes, len(self.queues))
        return {(q,): share + (1 if i < extra else 0) for i, q in enumerate(self.queues)}


_BACKOFF = re.compile(r"^(\d+(,\d+)*|exp:\d+(\.\d+)?:\d+(\.\d+)?)$")
_SCALING_KEYS = {"min_processes", "max_processes", "balance_max_shift", "balance_cooldown", "auto_scaling_strategy"}


class _Entry:
    """Reads one QUEUE_SUPERVISORS entry, naming the entry and key in every error."""

    def __init__(self, index: int, raw: object) -> None:
        if not isinstance(raw, Mapping):
            raise ImproperlyConfigured(f"QUEUE_SUPERVISORS[{index}] must be a dict, got {type(raw).__name__}")
        self.raw: Mapping[str, Any] = raw
        name = raw.get("name")
        self.where = f"QUEUE_SUPERVISORS[{index}]" + (f" ({name!r})" if name else "")

    def fail(self, problem: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{self.where}: {problem}")

    def number(self, key: str, default: float | None, *, minimum: float, whole: bool = False) -> float | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        # bool is an int to Python, never to an operator.
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and value != int(value)):
            kind = "a whole number" if whole else "a number"
            raise self.fail(f"{key} must be {kind}, got {value!r}")
        if value < minimum:
            raise self.fail(f"{key} must be at least {minimum:g}, got {value!r}")
        return float(value)

    def whole(self, key: str, default: int, *, minimum: int) -> int:
        return int(self.number(key, default, minimum=minimum, whole=True) or 0)

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise self.fail(f"{key} must be one of {', '.join(choices)}; got {value!r}")
        return str(value)


def _queues(entry: _Entry, known_queues: Collection[str]) -> tuple[str, ...]:
    queues = entry.raw.get("queues")
    if not isinstance(queues, list | tuple) or not queues or not all(isinstance(q, str) for q in queues):
        raise entry.fail(f"queues must be a non-empty list of queue names, got {queues!r}")
    unknown = [q for q in queues if q not in known_queues]
    if unknown:
        raise entry.fail(f"unknown queue(s) {', '.join(unknown)}; RQ_QUEUES has {', '.join(known_queues)}")
    if len(set(queues)) != len(queues):
        raise entry.fail(f"queues lists a queue twice: {queues!r}")
    return tuple(queues)


def _check_keys(entry: _Entry, balance: str) -> None:
    allowed = {f.name for f in SupervisorConfig.__dataclass_fields__.values()}
    unknown = sorted(set(entry.raw) - allowed)
    if unknown:
        raise entry.fail(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if balance == "auto" and "processes" in entry.raw:
        raise entry.fail("balance auto takes min_processes/max_processes, not processes")
    misplaced = sorted(_SCALING_KEYS & set(entry.raw))
    if balance != "auto" and misplaced:
        raise entry.fail(f"{', '.join(misplaced)} only apply to balance auto (this one is {balance!r})")


def _balance_of(entry: _Entry) -> Balance:
    raw = entry.raw.get("balance", "off")
    # Horizon writes `'balance' => false` for "off".
    value = "off" if raw is False else raw
    if value == "auto":
        return "auto"
    if value == "simple":
        return "simple"
    if value == "off":
        return "off"
    raise entry.fail(f"balance must be one of auto, simple, off (or false); got {raw!r}")


def parse_supervisor(index: int, raw: object, known_queues: Collection[str]) -> SupervisorConfig:
    entry = _Entry(index, raw)
    name = entry.raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        raise entry.fail(f"name must be a word (letters, digits, _ . -), got {name!r}")
    balance = _balance_of(entry)
    _check_keys(entry, balance)
    queues = _queues(entry, known_queues)
    backoff = entry.raw.get("backoff")
    if backoff is not None and not (isinstance(backoff, str) and _BACKOFF.match(backoff)):
        raise entry.fail(f"backoff must be like '10,30,60' or 'exp:BASE:CAP', got {backoff!r}")
    config = SupervisorConfig(
        name=name,
        queues=queues,
        balance=balance,
        processes=entry.whole("processes", 1, minimum=1),
        min_processes=entry.whole("min_processes", 1, minimum=0),
        max_processes=entry.whole("max_processes", 1, minimum=1),
        balance_max_shift=entry.whole("balance_max_shift", 1, minimum=1),
        balance_cooldown=float(entry.number("balance_cooldown", 3.0, minimum=0) or 0),
        auto_scaling_strategy="size"
        if entry.choice("auto_scaling_strategy", "time", ("time", "size")) == "size"
        else "time",
        tries=entry.whole("tries", 1, minimum=1),
        backoff=backoff,
        timeout=_optional_int(entry.number("timeout", None, minimum=1, whole=True)),
        max_jobs=_optional_int(entry.number("max_jobs", None, minimum=1, whole=True)),
        max_time=entry.number("max_time", None, minimum=1),
        memory=entry.number("memory", None, minimum=1),
        sleep=float(entry.number("sleep", 3.0, minimum=1) or 3.0),
        nice=entry.whole("nice", 0, minimum=0),
    )
    _check_counts(entry, config)
    return config


def _optional_int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _check_counts(entry: _Entry, config: SupervisorConfig) -> None:
    if config.nice > 19:
        raise entry.fail(f"nice must be between 0 and 19, got {config.nice}")
    n = len(config.queues)
    if config.balance == "auto":
        if "max_processes" not in entry.raw:
            raise entry.fail("balance auto needs max_processes (the most processes for all its queues together)")
        if config.max_processes < config.min_processes * n:
            raise entry.fail(
                f"max_processes {config.max_processes} is below min_processes {config.min_processes} "
                f"× {n} queue(s); raise max_processes or lower min_processes"
            )
    if config.balance == "simple" and config.processes < n:
        raise entry.fail(f"balance simple splits processes across its {n} queues: give at least {n} processes")


def parse_supervisors(raw: object, known_queues: Collection[str]) -> list[SupervisorConfig]:
    """QUEUE_SUPERVISORS as validated configs; ImproperlyConfigured says what to fix."""
    if not isinstance(raw, list | tuple) or not raw:
        raise ImproperlyConfigured(f"QUEUE_SUPERVISORS must be a non-empty list of dicts, got {raw!r}")
    configs = [parse_supervisor(i, entry, known_queues) for i, entry in enumerate(raw)]
    names = [c.name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ImproperlyConfigured(f"QUEUE_SUPERVISORS: supervisor name(s) used twice: {', '.join(duplicates)}")
    return configs


def parse_drain(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise ImproperlyConfigured(f"QUEUE_SUPERVISOR_DRAIN must be a positive number of seconds, got {raw!r}")
    return float(raw)


# ---------------------------------------------------------------------------- balancing (pure)


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


# ---------------------------------------------------------------------------- children


def _child_setup(niceness: int) -> None:
    """In the child, before exec: lower its priority, and ask the kernel to
    SIGTERM it if the master dies (SIGKILL, OOM), so no worker is orphaned:
    it finishes its job in hand and exits like on any other stop."""
    # First of all: until exec the child still has the master's Python
    # handlers, which would take a SIGTERM (ours below, or the kernel's when
    # the master dies) as "drain" and let the child go on to exec a worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if niceness:
        os.nice(niceness)
    if sys.platform.startswith("linux"):
        import ctypes

        parent = os.getppid()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the master died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    name: str  # its RQ worker name, so the master can read its busy state and counters
    started_at: float
    restarts: int
    stop_sent: float | None = None  # when it was asked to finish its job and exit
    forced: bool = False  # a second SIGTERM was sent: the job in hand is interrupted
    busy: bool = False
    counted: tuple[int, float] = (0, 0.0)  # (jobs, seconds) already folded into the runtime average

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """First SIGTERM: finish the job in hand, then exit 0 (never sent twice by accident)."""
        if self.stop_sent is None and self.proc.poll() is None:
            self.stop_sent = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)

    def interrupt(self) -> None:
        """Second SIGTERM: the worker stops its job now; the job is settled (retried or failed)."""
        self.stop()
        if not self.forced and self.proc.poll() is None:
            self.forced = True
            self.proc.send_signal(signal.SIGTERM)

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "name": self.name, "started_at": self.started_at, "restarts": self.restarts}


@dataclass
class Pool:
    supervisor: SupervisorConfig
    queues: tuple[str, ...]  # what each child works, in order
    target: int
    children: list[Child] = field(default_factory=list)
    retiring: list[Child] = field(default_factory=list)  # asked to stop (scaled down), not yet gone
    restarts: int = 0  # replacements of children that died
    crash_streak: int = 0  # consecutive children that died young
    next_start: float = 0.0  # monotonic time before which no child is started (crash backoff)
    owed: list[int] = field(default_factory=list)  # restart counts of exited children awaiting replacement

    @property
    def label(self) -> str:
        return ",".join(self.queues)


@dataclass
class SupervisorRun:
    config: SupervisorConfig
    pools: list[Pool]
    decisions: list[Decision] = field(default_factory=list)
    last_scaled_at: float | None = None

    def pool(self, queue: str) -> Pool:
        return next(p for p in self.pools if p.queues == (queue,))


@dataclass
class Observation:
    depths: dict[str, int]
    oldest: dict[str, float]  # age in seconds of each queue's head job
    paused: set[str]
    terminate: bytes | str | None


# ---------------------------------------------------------------------------- the master


class Master:
    def __init__(
        self,
        supervisors: Sequence[SupervisorConfig],
        *,
        connection: Redis,
        drain: float,
        manage_py: Path,
        verbosity: int = 1,
        name: str | None = None,
    ) -> None:
        self.conn = connection
        self.drain = drain
        self.manage_py = manage_py
        self.verbosity = verbosity
        self.host = socket.gethostname()
        # The token: in containers host and pid repeat from one start to the
        # next, and a child named like one SIGKILLed with the previous master
        # (its RQ worker key lives on for minutes) would be refused by RQ.
        self.name = name or f"{self.host}-{os.getpid()}-{secrets.token_hex(3)}"
        self.runs = [
            SupervisorRun(c, [Pool(c, queues, n) for queues, n in c.initial_pools().items()]) for c in supervisors
        ]
        self.queue_keys = {q: Queue.redis_queue_namespace_prefix + q for c in supervisors for q in c.queues}
        self.status: Literal["running", "draining"] = "running"
        self.started_at = time.time()
        self.stop_reason = ""
        self.cold = False  # a second stop signal: interrupt jobs now
        self.runtimes: dict[str, float] = {}
        self.last: Observation | None = None
        self._terminate_mark: bytes | str | None = None
        self._mark_known = False  # False while Redis has not answered yet: the first answer is the mark
        self._redis_ok = True
        self._spawned = 0
        self._next_prune = 0.0

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Supervise until a stop signal or queue_terminate, then drain."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        mark = self._redis(lambda: (self.conn.get(keys.SUPERVISOR_TERMINATE),), None)
        if mark is not None:
            self._terminate_mark, self._mark_known = mark[0], True
        self._redis(self._greet_other_masters, None)
        log.info(
            "queue master %s started (pid %d): %s; drain %gs",
            self.name,
            os.getpid(),
            "; ".join(self._describe(run.config) for run in self.runs),
            self.drain,
        )
        try:
            while not self.stop_reason:
                self.tick()
                self._sleep(TICK)
        finally:
            # Also after an unexpected error: the children still finish their jobs.
            self.stop_reason = self.stop_reason or "internal error: draining"
            self.drain_children()
            if self._redis_ok:  # else its state expires on its own; no waiting on a Redis that is away
                self._redis(self._unpublish, None)
        log.info("queue master %s stopped", self.name)

    def _on_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if not self.stop_reason:
            self.stop_reason = f"{name}: draining (a second signal interrupts the jobs in hand)"
            return
        # An impatient operator (Ctrl-C twice): stop the jobs in hand now; they are retried or failed.
        self.cold = True

    def _sleep(self, seconds: float) -> None:
        """Sleep in slices, so a signal is acted on within 0.1 s."""
        deadline = time.monotonic() + seconds
        while not self.stop_reason and time.monotonic() < deadline:
            time.sleep(0.1)

    def tick(self) -> None:
        observation = self._redis(self.observe, None)
        self.reap()
        if observation is not None:
            self.last = observation
            self._check_terminate(observation)
            if not self.stop_reason:
                self.rebalance(observation)
        if not self.stop_reason:
            self.reconcile()
        self._redis(self.publish, None)

    def drain_children(self) -> None:
        """Every child finishes its job in hand and exits; after ``drain``
        seconds the jobs still running are interrupted (a second SIGTERM:
        the worker settles them, to be retried or recorded as failed), and
        whatever is left a few seconds later is SIGKILLed (the reaper then
        retries its job)."""
        self.status = "draining"
        log.info("queue master %s: %s; %d process(es) to drain", self.name, self.stop_reason, len(self._all()))
        started = time.monotonic()
        grace = min(5.0, self.drain / 4)
        for child in self._all():
            child.stop()
        next_publish = 0.0
        while self._all():
            elapsed = time.monotonic() - started
            if self.cold or elapsed >= self.drain - grace:
                self._interrupt_all(elapsed)
            if elapsed >= self.drain:
                break
            self.reap()
            if time.monotonic() >= next_publish and self._may_publish(elapsed, grace):
                self._redis(self.publish, None)
                next_publish = time.monotonic() + (TICK if self._redis_ok else DRAIN_RETRY)
            time.sleep(0.1)
        self._kill_all()
        log.info("queue master %s drained in %.1fs", self.name, time.monotonic() - started)

    def _may_publish(self, elapsed: float, grace: float) -> bool:
        """While Redis answers, always. Once it has failed, an attempt can
        block for the client's timeouts (an unreachable host): not when that
        would push back the interrupt or kill deadline."""
        if self._redis_ok:
            return True
        return not any(0 <= deadline - elapsed < DRAIN_GUARD for deadline in (self.drain - grace, self.drain))

    def _interrupt_all(self, elapsed: float) -> None:
        for child in self._all():
            if not child.forced:
                log.warning(
                    "%s (pid %d) still busy after %.0fs of drain: interrupting its job", child.name, child.pid, elapsed
                )
                child.interrupt()

    def _kill_all(self) -> None:
        for child in self._all():
            if child.proc.poll() is None:
                log.error(
                    "%s (pid %d) did not stop in time: SIGKILL (the reaper retries its job)", child.name, child.pid
                )
                child.proc.kill()
            child.proc.wait()
        for run in self.runs:
            for pool in run.pools:
                pool.children.clear()
                pool.retiring.clear()

    # ------------------------------------------------------------------ observing Redis

    def observe(self) -> Observation:
        """Queue depths, heads, pause set, terminate signal and the children's
        counters in one round trip; the head jobs' ages in a second one."""
        queues = list(self.queue_keys)
        children = self._all()
        with self.conn.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(self.queue_keys[queue])
                pipe.lindex(self.queue_keys[queue], 0)
            pipe.smembers(keys.PAUSED_QUEUES)
            pipe.get(keys.SUPERVISOR_TERMINATE)
            for child in children:
                pipe.hmget(
                    Worker.redis_worker_namespace_prefix + child.name,
                    "state",
                    "successful_job_count",
                    "total_working_time",
                )
            replies = pipe.execute()
        n = len(queues)
        depths = {q: int(replies[2 * i]) for i, q in enumerate(queues)}
        heads = {q: replies[2 * i + 1] for i, q in enumerate(queues) if replies[2 * i + 1]}
        paused = {as_text(p) for p in replies[2 * n]}
        self._read_children(children, replies[2 * n + 2 :])
        return Observation(depths, self._head_ages(heads), paused, replies[2 * n + 1])

    def _head_ages(self, heads: Mapping[str, bytes]) -> dict[str, float]:
        if not heads:
            return {}
        with self.conn.pipeline(transaction=False) as pipe:
            for job_id in heads.values():
                pipe.hget(Job.key_for(as_text(job_id)), "enqueued_at")
            stamps = pipe.execute()
        now = time.time()
        return {q: max(0.0, now - utcparse(as_text(s)).timestamp()) for q, s in zip(heads, stamps, strict=True) if s}

    def _read_children(self, children: Sequence[Child], rows: Sequence[Sequence[bytes | None]]) -> None:
        """Busy flags, and the per-queue moving average of job runtimes from
        the workers' own counters (what the "time" strategy multiplies by depth)."""
        samples: dict[str, tuple[int, float]] = {}
        for child, (state, jobs, seconds) in zip(children, rows, strict=True):
            child.busy = as_text(state) == "busy"
            total = (int(jobs or 0), float(seconds or 0.0))
            new_jobs, new_seconds = total[0] - child.counted[0], total[1] - child.counted[1]
            child.counted = total
            queue = self._queue_of(child)
            if queue is not None and new_jobs > 0:
                jobs_sum, seconds_sum = samples.get(queue, (0, 0.0))
                samples[queue] = (jobs_sum + new_jobs, seconds_sum + new_seconds)
        for queue, (jobs_sum, seconds_sum) in samples.items():
            sample = seconds_sum / jobs_sum
            old = self.runtimes.get(queue)
            self.runtimes[queue] = sample if old is None else old + RUNTIME_WEIGHT * (sample - old)

    def _queue_of(self, child: Child) -> str | None:
        for pool in self._pools():
            if child in pool.children or child in pool.retiring:
                return pool.queues[0] if len(pool.queues) == 1 else None
        return None

    def _check_terminate(self, observation: Observation) -> None:
        signal_value = observation.terminate
        if not self._mark_known:
            # Redis was away at start: a signal already there may predate us.
            self._terminate_mark, self._mark_known = signal_value, True
            return
        if signal_value is not None and signal_value != self._terminate_mark:
            self.stop_reason = "queue_terminate: draining"

    # ------------------------------------------------------------------ scaling and children

    def loads(self, run: SupervisorRun, observation: Observation) -> dict[str, QueueLoad]:
        depths = {q: observation.depths.get(q, 0) for q in run.config.queues}
        waits = estimate_waits(depths, {q: self.runtimes.get(q) for q in run.config.queues})
        return {q: QueueLoad(depths[q], waits[q], q in observation.paused) for q in run.config.queues}

    def rebalance(self, observation: Observation) -> None:
        now = time.time()
        for run in self.runs:
            if run.config.balance != "auto":
                continue
            current = {q: run.pool(q).target for q in run.config.queues}
            plan = balance(
                current,
                self.loads(run, observation),
                run.config,
                now=now,
                last_scaled_at=run.last_scaled_at,
                retiring={q: len(run.pool(q).retiring) for q in run.config.queues},
            )
            if not plan.scaled:
                continue
            run.last_scaled_at = now
            for decision in plan.decisions:
                run.pool(decision.queue).target = decision.after
                log.info(
                    "supervisor %s: queue %s %d -> %d process(es): %s",
                    run.config.name,
                    decision.queue,
                    decision.before,
                    decision.after,
                    decision.reason,
                )
            run.decisions = (run.decisions + plan.decisions)[-DECISIONS_KEPT:]

    def reconcile(self) -> None:
        """Start children up to each pool's target; retire the extra ones (idle first, newest first)."""
        now = time.monotonic()
        for pool in self._pools():
            while len(pool.children) < pool.target and now >= pool.next_start:
                try:
                    child = self.spawn(pool, restarts=pool.owed[0] if pool.owed else 0)
                except (OSError, subprocess.SubprocessError):
                    # Out of processes or memory for a moment: the running children go on.
                    log.exception("could not start a worker for %s; trying again in 5s", pool.label)
                    pool.next_start = now + 5
                    break
                pool.children.append(child)
                if pool.owed:
                    pool.owed.pop(0)
            if len(pool.children) >= pool.target:
                pool.owed.clear()  # scaled down meanwhile: those slots are gone
            extra = len(pool.children) - pool.target
            if extra > 0:
                by_preference = sorted(pool.children, key=lambda c: (c.busy, -c.started_at))
                for child in by_preference[:extra]:
                    log.info("%s (pid %d): scaled down, finishing its job in hand", child.name, child.pid)
                    child.stop()
                    pool.children.remove(child)
                    pool.retiring.append(child)

    def spawn(self, pool: Pool, *, restarts: int) -> Child:
        self._spawned += 1
        name = f"{self.name}:{pool.supervisor.name}:{self._spawned}"
        command = [
            sys.executable,
            str(self.manage_py),
            "rqworker",
            *pool.queues,
            "--name",
            name,
            *pool.supervisor.worker_flags(),
            "--verbosity",
            str(self.verbosity),
        ]
        niceness = pool.supervisor.nice
        # preexec_fn is only unsafe with threads, and the master has none.
        proc = subprocess.Popen(
            command,
            cwd=self.manage_py.parent,
            # Its own session: a terminal's Ctrl-C reaches the master only, and
            # the master alone decides when a child gets its first and second SIGTERM.
            start_new_session=True,
            preexec_fn=lambda: _child_setup(niceness),
        )
        log.info("%s: started pid %d on %s", name, proc.pid, pool.label)
        return Child(proc, name, time.time(), restarts)

    def reap(self) -> None:
        """Notice children that exited: retired ones are gone; the others are
        owed a replacement, which ``reconcile`` starts."""
        for pool in self._pools():
            for child in [c for c in pool.retiring if c.proc.poll() is not None]:
                pool.retiring.remove(child)
                log.info("%s (pid %d) exited %s", child.name, child.pid, _exitas_text(child.proc.returncode))
            for child in [c for c in pool.children if c.proc.poll() is not None]:
                pool.children.remove(child)
                if child.stop_sent is not None or self.stop_reason:
                    log.info("%s (pid %d) exited %s", child.name, child.pid, _exitas_text(child.proc.returncode))
                    continue
                self._replace(pool, child)

    def _replace(self, pool: Pool, child: Child) -> None:
        code = child.proc.returncode
        lived = time.time() - child.started_at
        if code == 0:
            # A limit (--max-jobs, --max-time, --memory) or queue_restart: recycling.
            log.info("%s (pid %d) recycled after %.0fs: starting a fresh one", child.name, child.pid, lived)
            pool.crash_streak = 0
            pool.owed.append(child.restarts)
            return
        pool.restarts += 1
        pool.crash_streak = pool.crash_streak + 1 if lived < YOUNG_DEATH else 0
        delay = min(MAX_BACKOFF, 2.0 ** (pool.crash_streak - 1)) if pool.crash_streak else 0.0
        pool.next_start = time.monotonic() + delay
        log.warning(
            "%s (pid %d) died (%s) after %.0fs; restarting%s (restart #%d of pool %s)",
            child.name,
            child.pid,
            _exitas_text(code),
            lived,
            f" in {delay:g}s" if delay else "",
            child.restarts + 1,
            pool.label,
        )
        pool.owed.append(child.restarts + 1)

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        now = time.time()
        paused = self.last.paused if self.last else set()
        return {
            "master": {
                "name": self.name,
                "host": self.host,
                "pid": os.getpid(),
                "started_at": self.started_at,
                "status": self.status,
                "updated_at": now,
                "drain": self.drain,
            },
            "supervisors": [self._supervisor_state(run, paused) for run in self.runs],
        }

    def _supervisor_state(self, run: SupervisorRun, paused: set[str]) -> dict[str, Any]:
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
            "pools": [self._pool_state(pool) for pool in run.pools],
            "decisions": [d.as_dict() for d in run.decisions],
        }

    def _pool_state(self, pool: Pool) -> dict[str, Any]:
        observed = self.last
        depth = sum(observed.depths.get(q, 0) for q in pool.queues) if observed else None
        oldest = max((observed.oldest.get(q, 0.0) for q in pool.queues), default=0.0) if observed else None
        runtime = self.runtimes.get(pool.queues[0]) if len(pool.queues) == 1 else None
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

    def publish(self) -> None:
        """Our field of the masters hash, and the key that keeps it counted
        for STATE_TTL seconds; the hash itself goes when no master is left."""
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.hset(keys.SUPERVISOR_MASTERS, self.name, json.dumps(self.state()))
            pipe.set(keys.supervisor_alive(self.name), self.started_at, ex=STATE_TTL)
            pipe.expire(keys.SUPERVISOR_MASTERS, STATE_TTL)
            pipe.execute()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY
            self._prune()

    def _prune(self) -> None:
        """Drop the fields of masters that died without removing theirs (SIGKILL)."""
        _, dead = _published(self.conn)
        if dead:
            self.conn.hdel(keys.SUPERVISOR_MASTERS, *dead)

    def _unpublish(self) -> None:
        """Remove our state (only ours) so the dashboard no longer shows this master."""
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.SUPERVISOR_MASTERS, self.name)
            pipe.delete(keys.supervisor_alive(self.name))
            pipe.execute()

    def _greet_other_masters(self) -> None:
        """Several masters are fine (one per worker host); two on one host
        usually mean it was started twice."""
        others = [s["master"] for s in supervisor_state(self.conn) if s["master"].get("name") != self.name]
        same_host = [m for m in others if m.get("host") == self.host]
        if same_host:
            log.warning(
                "another queue master is running on this host (%s): both start workers for their supervisors",
                ", ".join(str(m.get("name")) for m in same_host),
            )
        elif others:
            log.info("other queue masters running: %s", ", ".join(str(m.get("name")) for m in others))

    # ------------------------------------------------------------------ helpers

    def _pools(self) -> list[Pool]:
        return [pool for run in self.runs for pool in run.pools]

    def _all(self) -> list[Child]:
        return [child for pool in self._pools() for child in (*pool.children, *pool.retiring)]

    def _redis(self, call: Callable[[], T], default: T) -> T:
        """Redis away: children keep working (they wait for it themselves) and
        the master keeps restarting them; it only stops scaling and publishing.
        Any other error is a bug: logged with its traceback, and the master
        goes on supervising its children."""
        try:
            result = call()
        except RedisError as exc:  # ConnectionError, TimeoutError, ResponseError...
            if self._redis_ok:
                log.error("queue master %s: Redis unavailable (%s); scaling paused", self.name, exc)
            self._redis_ok = False
            return default
        except Exception:
            log.exception("queue master %s: unexpected error in %s", self.name, getattr(call, "__name__", call))
            return default
        if not self._redis_ok:
            log.info("queue master %s: Redis is back", self.name)
        self._redis_ok = True
        return result

    @staticmethod
    def _describe(config: SupervisorConfig) -> str:
        if config.balance == "auto":
            size = f"{config.min_processes}-{config.max_processes} processes"
        else:
            size = f"{config.processes} process(es)"
        return f"{config.name} [{', '.join(config.queues)}] balance {config.balance}, {size}"


def _exitas_text(code: int | None) -> str:
    if code is None:
        return "(still running)"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"with status {code}"


# ---------------------------------------------------------------------------- for commands and the dashboard


def supervisor_state(conn: Redis) -> list[dict[str, Any]]:
    """The last published state (see ``Master.state``) of every live master,
    i.e. one that published in the last STATE_TTL seconds, by host and start
    time; [] when none is running."""
    return _published(conn)[0]


def _published(conn: Redis) -> tuple[list[dict[str, Any]], list[bytes | str]]:
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
