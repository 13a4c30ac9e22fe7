"""Job metrics: per-minute counters in Redis, written by workers in the round
trip they already make to settle a job, and read by the dashboard, the
snapshots, the alerts and /metrics.

One hash per minute (``vito:metrics:<unix minute>``), fields
``<scope>|<name>|<counter>``: scope ``q`` (queue), ``j`` (job name), ``t``
(tenant id); counters ``n`` (attempts finished), ``f`` (attempts failed),
``rt`` / ``wt`` (runtime / wait sums in ms), and for queues and jobs
histograms ``rth:<bucket>`` / ``wth:<bucket>`` from which p50/p95 come.
A hash lives MINUTE_TTL: long enough for the dashboard's last hour and for
``queue_snapshot`` to catch up after a missed run; history beyond that is
the snapshots' job (PostgreSQL).
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from queueing import keys, scripts

# Histogram upper bounds in ms (the last bucket is everything above).
BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000)
MINUTE_TTL = 26 * 3600
SCOPES = {"q": "queue", "j": "job", "t": "tenant"}


def _bucket(ms: float) -> int:
    return bisect.bisect_left(BUCKETS_MS, ms)


def record(
    pipe: Any,
    *,
    queue: str,
    job_name: str,
    tenant_id: int | None,
    runtime_s: float,
    wait_s: float | None,
    failed: bool,
    at: float | None = None,
) -> None:
    """Queue the counter updates for one finished attempt on ``pipe`` (no round trip of its own)."""
    runtime_ms = max(0.0, runtime_s * 1000)
    wait_ms = max(0.0, wait_s * 1000) if wait_s is not None else None
    scopes = [f"q|{queue}", f"j|{job_name}"]  # percentiles per queue and per job; tenants get sums only
    if tenant_id is not None:
        scopes.append(f"t|{tenant_id}")
    scripts.metrics_in(
        pipe,
        keys.metrics_minute(int((at or time.time()) // 60)),
        [
            MINUTE_TTL,
            1 if failed else 0,
            round(runtime_ms, 3),
            "" if wait_ms is None else round(wait_ms, 3),
            _bucket(runtime_ms),
            _bucket(wait_ms or 0.0),
            2,
            *scopes,
        ],
    )


@dataclass
class Totals:
    """Counters summed over some minutes for one scope/name."""

    jobs: int = 0
    failed: int = 0
    runtime_ms: float = 0.0
    wait_ms: float = 0.0
    waited: int = 0
    runtime_hist: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    wait_hist: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))

    @property
    def runtime_avg_ms(self) -> float | None:
        return self.runtime_ms / self.jobs if self.jobs else None

    @property
    def wait_avg_ms(self) -> float | None:
        return self.wait_ms / self.waited if self.waited else None

    @property
    def failure_rate(self) -> float:
        return self.failed / self.jobs if self.jobs else 0.0

    def runtime_p(self, q: float) -> float | None:
        return percentile(self.runtime_hist, q)

    def wait_p(self, q: float) -> float | None:
        return percentile(self.wait_hist, q)

    def add(self, other: Totals) -> None:
        self.jobs += other.jobs
        self.failed += other.failed
        self.runtime_ms += other.runtime_ms
        self.wait_ms += other.wait_ms
        self.waited += other.waited
        self.runtime_hist = [a + b for a, b in zip(self.runtime_hist, other.runtime_hist, strict=True)]
        self.wait_hist = [a + b for a, b in zip(self.wait_hist, other.wait_hist, strict=True)]


def percentile(hist: list[int], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding the q-th quantile; the open
    last bucket reports its lower bound. None when there is no data."""
    total = sum(hist)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return BUCKETS_MS[min(index, len(BUCKETS_MS) - 1)]
    return BUCKETS_MS[-1]


def current_minute(at: float | None = None) -> int:
    return int((at or time.time()) // 60)


def read_minutes(conn: Any, minutes: Iterable[int]) -> dict[int, dict[str, str]]:
    """Raw hashes for the given unix minutes, in one round trip."""
    wanted = list(minutes)
    with conn.pipeline(transaction=False) as pipe:
        for minute in wanted:
            pipe.hgetall(keys.metrics_minute(minute))
        raw = pipe.execute()
    return {minute: {_s(k): _s(v) for k, v in fields.items()} for minute, fields in zip(wanted, raw, strict=True)}


def fold(hashes: Iterable[dict[str, str]]) -> dict[tuple[str, str], Totals]:
    """Sum minute hashes into Totals keyed by (scope letter, name)."""
    out: dict[tuple[str, str], Totals] = defaultdict(Totals)
    for fields in hashes:
        for name, value in fields.items():
            try:
                scope, who, counter = name.split("|", 2)
            except ValueError:
                continue
            totals = out[(scope, who)]
            if counter == "n":
                totals.jobs += int(value)
            elif counter == "f":
                totals.failed += int(value)
            elif counter == "rt":
                totals.runtime_ms += float(value)
            elif counter == "wt":
                totals.wait_ms += float(value)
            elif counter == "wn":
                totals.waited += int(value)
            elif counter.startswith("rth:"):
                totals.runtime_hist[int(counter[4:])] += int(value)
            elif counter.startswith("wth:"):
                totals.wait_hist[int(counter[4:])] += int(value)
    return dict(out)


def window(conn: Any, *, minutes: int, end_minute: int | None = None) -> dict[tuple[str, str], Totals]:
    """Totals over the last ``minutes`` minutes (the current, partial one included)."""
    end = current_minute() if end_minute is None else end_minute
    return fold(read_minutes(conn, range(end - minutes + 1, end + 1)).values())


def series(conn: Any, *, minutes: int, scope: str = "q", name: str | None = None) -> list[tuple[int, int, int]]:
    """Per minute over the last ``minutes``: (unix minute, jobs, failed), summed
    over every name of ``scope`` unless ``name`` is given."""
    end = current_minute()
    raw = read_minutes(conn, range(end - minutes + 1, end + 1))
    points = []
    for minute, fields in raw.items():
        jobs = failed = 0
        for (sc, who), totals in fold([fields]).items():
            if sc == scope and (name is None or who == name):
                jobs += totals.jobs
                failed += totals.failed
        points.append((minute, jobs, failed))
    return points


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
