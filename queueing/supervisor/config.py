"""QUEUE_SUPERVISORS read into validated configs; every error names the entry and the key."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import ImproperlyConfigured

Balance = Literal["auto", "simple", "off"]
Strategy = Literal["time", "size"]


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
    concurrency: int = 1  # jobs in flight per process (threads): for queues whose jobs wait on the network
    # balance off, several queues: a job from a queue after the first is taken
    # only when its timeout is at most this (so the first queue never waits
    # behind an export); None takes anything, as Laravel's --queue=high,default.
    borrow_max_timeout: int | None = None

    def worker_flags(self) -> list[str]:
        """The ``rqworker`` options every child of this supervisor gets."""
        flags = ["--tries", str(self.tries), "--sleep", f"{self.sleep:g}"]
        optional = {
            "--backoff": self.backoff,
            "--timeout": self.timeout,
            "--max-jobs": self.max_jobs,
            "--max-time": self.max_time,
            "--memory": self.memory,
            "--borrow-max-timeout": self.borrow_max_timeout,
            "--concurrency": self.concurrency if self.concurrency > 1 else None,
        }
        for flag, value in optional.items():
            if value is not None:
                flags += [flag, value if isinstance(value, str) else f"{value:g}"]
        return flags

    def describe(self) -> str:
        """One line for the log: name, queues, balance and size."""
        if self.balance == "auto":
            size = f"{self.min_processes}-{self.max_processes} processes"
        else:
            size = f"{self.processes} process(es)"
        return f"{self.name} [{', '.join(self.queues)}] balance {self.balance}, {size}"

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


class SupervisorConfigError(ImproperlyConfigured):
    """A QUEUE_SUPERVISORS problem; ``key`` names the offending key when there is one
    (a layout file turns it into a line number)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class _Entry:
    """Reads one QUEUE_SUPERVISORS entry, naming the entry and key in every error."""

    def __init__(self, index: int, raw: object) -> None:
        if not isinstance(raw, Mapping):
            raise ImproperlyConfigured(f"QUEUE_SUPERVISORS[{index}] must be a dict, got {type(raw).__name__}")
        self.raw: Mapping[str, Any] = raw
        name = raw.get("name")
        self.where = f"QUEUE_SUPERVISORS[{index}]" + (f" ({name!r})" if name else "")

    def fail(self, problem: str, key: str | None = None) -> SupervisorConfigError:
        return SupervisorConfigError(f"{self.where}: {problem}", key)

    def number(self, key: str, default: float | None, *, minimum: float, whole: bool = False) -> float | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        # bool is an int to Python, never to an operator.
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and value != int(value)):
            kind = "a whole number" if whole else "a number"
            raise self.fail(f"{key} must be {kind}, got {value!r}", key)
        if value < minimum:
            raise self.fail(f"{key} must be at least {minimum:g}, got {value!r}", key)
        return float(value)

    def whole(self, key: str, default: int, *, minimum: int) -> int:
        return int(self.number(key, default, minimum=minimum, whole=True) or 0)

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise self.fail(f"{key} must be one of {', '.join(choices)}; got {value!r}", key)
        return str(value)


def _queues(entry: _Entry, known_queues: Collection[str]) -> tuple[str, ...]:
    queues = entry.raw.get("queues")
    if not isinstance(queues, list | tuple) or not queues or not all(isinstance(q, str) for q in queues):
        raise entry.fail(f"queues must be a non-empty list of queue names, got {queues!r}", "queues")
    unknown = [q for q in queues if q not in known_queues]
    if unknown:
        raise entry.fail(
            f"unknown queue(s) {', '.join(unknown)}; the declared queues are {', '.join(known_queues)}", "queues"
        )
    if len(set(queues)) != len(queues):
        raise entry.fail(f"queues lists a queue twice: {queues!r}", "queues")
    return tuple(queues)


def _check_keys(entry: _Entry, balance: str) -> None:
    allowed = {f.name for f in SupervisorConfig.__dataclass_fields__.values()}
    unknown = sorted(set(entry.raw) - allowed)
    if unknown:
        raise entry.fail(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}", unknown[0])
    if balance == "auto" and "processes" in entry.raw:
        raise entry.fail("balance auto takes min_processes/max_processes, not processes", "processes")
    misplaced = sorted(_SCALING_KEYS & set(entry.raw))
    if balance != "auto" and misplaced:
        raise entry.fail(f"{', '.join(misplaced)} only apply to balance auto (this one is {balance!r})", misplaced[0])


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
    raise entry.fail(f"balance must be one of auto, simple, off (or false); got {raw!r}", "balance")


def parse_supervisor(index: int, raw: object, known_queues: Collection[str]) -> SupervisorConfig:
    entry = _Entry(index, raw)
    name = entry.raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        raise entry.fail(f"name must be a word (letters, digits, _ . -), got {name!r}", "name")
    balance = _balance_of(entry)
    _check_keys(entry, balance)
    queues = _queues(entry, known_queues)
    backoff = entry.raw.get("backoff")
    if backoff is not None and not (isinstance(backoff, str) and _BACKOFF.match(backoff)):
        raise entry.fail(f"backoff must be like '10,30,60' or 'exp:BASE:CAP', got {backoff!r}", "backoff")
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
        concurrency=entry.whole("concurrency", 1, minimum=1),
        borrow_max_timeout=_optional_int(entry.number("borrow_max_timeout", None, minimum=1, whole=True)),
    )
    _check_counts(entry, config)
    return config


def _optional_int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _check_counts(entry: _Entry, config: SupervisorConfig) -> None:
    if config.nice > 19:
        raise entry.fail(f"nice must be between 0 and 19, got {config.nice}", "nice")
    n = len(config.queues)
    if config.balance == "auto":
        if "max_processes" not in entry.raw:
            raise entry.fail("balance auto needs max_processes (the most processes for all its queues together)")
        if config.max_processes < config.min_processes * n:
            raise entry.fail(
                f"max_processes {config.max_processes} is below min_processes {config.min_processes} "
                f"× {n} queue(s); raise max_processes or lower min_processes",
                "max_processes",
            )
    if config.balance == "simple" and config.processes < n:
        raise entry.fail(
            f"balance simple splits processes across its {n} queues: give at least {n} processes", "processes"
        )
    if config.borrow_max_timeout is not None and (config.balance != "off" or n < 2):
        raise entry.fail(
            "borrow_max_timeout applies to balance off with several queues (each child of auto or simple "
            "works one queue)",
            "borrow_max_timeout",
        )


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
