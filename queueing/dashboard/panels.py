"""What the dashboard shows, from Redis, the ledger and the snapshots (reads
only); the query string and failed list are ``filters``, the buttons apps
add to their panels are registered in ``queueing.status``.

Every read here is bounded, because the page refreshes every few seconds for
every operator who has it open: failed jobs come 50 at a time by keyset on
the (queue|job_name|·, failed_at) indexes, recent jobs from the head of each
registry, locks from a capped SCAN. docs/dashboard.md."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Sum
from django.utils import timezone
from redis import Redis
from rq.job import Job
from rq.utils import now as rq_now

from lib import charts
from queueing import metrics, recent, selectors, status, unique
from queueing.dashboard.filters import CHART_HOURS, Filters, failed_page
from queueing.dashboard.formatting import EPOCH, duration, millis
from queueing.dispatch import get_queue
from queueing.models import FailedJob, MetricSnapshot
from queueing.supervisor.state import supervisor_state
from queueing.unique import UniqueLock

RECENT_PER_SOURCE = 20  # from each of queued / running / finished, per queue
RECENT_SHOWN = 50
LOCKS_SHOWN = 200
TENANTS_SHOWN = 50
JOBS_SHOWN = 25
DECISIONS_SHOWN = 8
SNAPSHOT_CACHE_SECONDS = 60  # snapshots arrive every 5 minutes; refreshes in between reuse the figures


# ---------------------------------------------------------------- failed counts


def failed_counts() -> dict[str, int]:
    """Final failures in the last hour and 7 days: range counts on the failed_at
    index. The week's count walks up to a week of ledger (~25 ms per 100k rows),
    so it is reused until a new failure arrives (at most a minute)."""
    now = timezone.now()
    week: int = _cached("failed_week", FailedJob.objects.filter(failed_at__gte=now - timedelta(days=7)).count)
    return {"hour": FailedJob.objects.filter(failed_at__gte=now - timedelta(hours=1)).count(), "week": week}


# ---------------------------------------------------------------- queues and workers


def queue_rows(conn: Redis, statuses: list[selectors.QueueStatus]) -> list[dict[str, Any]]:
    scheduled = {}
    with conn.pipeline(transaction=False) as pipe:
        for s in statuses:
            pipe.zcard(get_queue(s.name).scheduled_job_registry.key)
        for s, count in zip(statuses, pipe.execute(), strict=True):
            scheduled[s.name] = int(count)
    return [
        {
            "s": s,
            "scheduled": scheduled[s.name],
            "oldest_wait": duration(s.oldest_wait_s),
            "runtime_p50": millis(s.runtime_p50_ms),
            "runtime_p95": millis(s.runtime_p95_ms),
            "wait_avg": millis(s.wait_avg_ms),
            "wait_p95": millis(s.wait_p95_ms),
            "jobs_per_minute": f"{s.jobs_per_minute:.1f}",
        }
        for s in statuses
    ]


def _enum_text(value: object) -> str:
    """RQ's status enums print as ``JobStatus.QUEUED``; operators read ``queued``."""
    text = str(getattr(value, "value", value) or "")
    return text.rpartition(".")[2].lower() if text.startswith(("WorkerStatus.", "JobStatus.")) else text


def worker_rows(conn: Redis) -> list[dict[str, Any]]:
    return [
        {
            "w": w,
            "state": _enum_text(w.state),
            "elapsed": duration(w.elapsed_s) if w.current_job else "",
            "rss": "—" if w.rss_mb is None else f"{w.rss_mb:.0f} MB",
            "uptime": duration((rq_now() - w.birth).total_seconds()) if w.birth else "—",
        }
        for w in selectors.workers(conn)
    ]


def masters(conn: Redis) -> list[dict[str, Any]]:
    """The published state of every live queue_supervise master (one per
    worker host), as queueing.supervisor.state reads it, dressed for the page.
    Shape: see queueing.supervisor.state.describe()."""
    return [_master(state) for state in supervisor_state(conn)]


def _master(state: dict[str, Any]) -> dict[str, Any]:
    master = state["master"]
    now = datetime.now(UTC).timestamp()
    master["uptime"] = duration(now - master["started_at"]) if _number(master.get("started_at")) else "—"
    master["age"] = duration(now - master["updated_at"]) if _number(master.get("updated_at")) else "—"
    supervisors = [s for s in state.get("supervisors") or [] if isinstance(s, dict)]
    for sup in supervisors:
        pools = [p for p in sup.get("pools") or [] if isinstance(p, dict)]
        for pool in pools:
            pool["running"] = len(pool.get("processes") or [])
        sup["pools"] = pools
        sup["running"] = sum(p["running"] for p in pools)
        decisions = [d for d in sup.get("decisions") or [] if isinstance(d, dict)]
        for decision in decisions:
            at = decision.get("at")
            when = datetime.fromtimestamp(float(at), UTC) if isinstance(at, int | float) else None
            decision["when"] = timezone.localtime(when).strftime("%H:%M:%S") if when else ""
        sup["recent_decisions"] = list(reversed(decisions[-DECISIONS_SHOWN:]))
    return {"master": master, "supervisors": supervisors}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------- recent jobs


def recent_jobs(conn: Redis, *, search: str = "") -> list[dict[str, Any]]:
    """The head of each queue, its running jobs and its latest finished ones,
    newest first; ``search`` matches the job name or id. Finished (and failed)
    attempts come from the workers' capped record (queueing/recent.py), since
    finished job hashes are not kept; the failed list below is the ledger's."""
    names = selectors.queue_names()
    wanted: list[tuple[str, str]] = []
    for name in names:
        queue = get_queue(name)
        # cleanup=False: a read must not settle registries (the reaper owns that).
        wanted += [(name, i) for i in queue.get_job_ids(0, RECENT_PER_SOURCE)]
        wanted += [(name, i) for i in queue.started_job_registry.get_job_ids(0, RECENT_PER_SOURCE - 1, cleanup=False)]
        # Jobs that keep a result (result_ttl > 0) are in RQ's finished registry as well.
        finished = queue.finished_job_registry.get_job_ids(0, RECENT_PER_SOURCE - 1, desc=True, cleanup=False)
        wanted += [(name, i) for i in finished]
    serializer = get_queue(next(iter(selectors.queue_names()))).serializer
    fetched = Job.fetch_many([job_id for _, job_id in wanted], connection=conn, serializer=serializer)
    needle = search.lower()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()

    def matches(job_id: str, name: str) -> bool:
        return not needle or needle in name.lower() or needle in job_id.lower()

    for (queue_name, job_id), job in zip(wanted, fetched, strict=True):
        if job is None or job_id in seen:
            continue
        seen.add(job_id)
        name = job.func_name or ""
        if not matches(job_id, name):
            continue
        runtime = (job.ended_at - job.started_at).total_seconds() if job.ended_at and job.started_at else None
        try:
            args, kwargs = list(job.args), dict(job.kwargs)
        except Exception:
            args, kwargs = ["(undecodable)"], {}
        rows.append(
            {
                "id": job_id,
                "queue": queue_name,
                "name": name,
                "status": _enum_text(job.get_status(refresh=False)),
                "args": recent.args_text(args, kwargs),
                "at": job.ended_at or job.started_at or job.enqueued_at or job.created_at,
                "runtime": duration(runtime) if runtime is not None else "",
            }
        )
    for entry in recent.read(conn, names):
        # Each attempt's outcome once (a retried job's failed attempt too); a finished
        # job RQ still keeps (result_ttl) already has its row from the registry.
        if (entry.status == "finished" and entry.id in seen) or not matches(entry.id, entry.name):
            continue
        rows.append(
            {
                "id": entry.id,
                "queue": entry.queue,
                "name": entry.name,
                "status": entry.status,
                "args": entry.args,
                "at": datetime.fromtimestamp(entry.at, UTC),
                "runtime": duration(entry.runtime_s),
            }
        )
    rows.sort(key=lambda row: row["at"] or EPOCH, reverse=True)
    return rows[:RECENT_SHOWN]


# ---------------------------------------------------------------- unique locks


SCAN_STEPS = 20  # × 1,000 keys examined per refresh at most


def locks(conn: Redis) -> tuple[list[UniqueLock], bool]:
    """Up to LOCKS_SHOWN locks, at most SCAN_STEPS round trips of SCAN, and whether there are more."""
    return unique.scan_locks(conn, limit=LOCKS_SHOWN, scan_steps=SCAN_STEPS)


# ---------------------------------------------------------------- tenants and job classes


def tenant_rows(conn: Redis, *, selected: int | None) -> list[dict[str, Any]]:
    """Per tenant: the last hour from Redis, 24 h from the snapshots and final
    failures over 7 days from the ledger (the dashboard's own figures, per tenant)."""
    hour = dict(selectors.per_tenant(conn))
    day, ledger = _cached("tenants", _tenant_history)
    names = sorted(set(hour) | set(day) | set(ledger), key=lambda n: (-hour.get(n, metrics.Totals()).jobs, n))
    rows = []
    for name in names[:TENANTS_SHOWN]:
        totals = hour.get(name, metrics.Totals())
        jobs_day, failed_day = day.get(name, (0, 0))
        rows.append(
            {
                "tenant": name,
                "selected": name == str(selected),
                "jobs_hour": totals.jobs,
                "failed_hour": totals.failed,
                "runtime_avg": millis(totals.runtime_avg_ms),
                "wait_avg": millis(totals.wait_avg_ms),
                "jobs_day": jobs_day,
                "failed_day": failed_day,
                "ledger_week": ledger.get(name, 0),
            }
        )
    return rows


def _tenant_history() -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    now = timezone.now()
    day = {
        row["name"]: (row["jobs"] or 0, row["failed"] or 0)
        for row in MetricSnapshot.objects.filter(
            scope=MetricSnapshot.Scope.TENANT, period_start__gte=now - timedelta(hours=24)
        )
        .values("name")
        .annotate(jobs=Sum("jobs"), failed=Sum("failed"))
        .order_by("-jobs")[:TENANTS_SHOWN]
    }
    ledger = {
        str(row["tenant_id"]): row["n"]
        for row in FailedJob.objects.filter(failed_at__gte=now - timedelta(days=7), tenant_id__isnull=False)
        .values("tenant_id")
        .annotate(n=Count("id"))
        .order_by("-n")[:TENANTS_SHOWN]
    }
    return day, ledger


def job_rows(conn: Redis) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "jobs": t.jobs,
            "failed": t.failed,
            "runtime_p50": millis(t.runtime_p(0.5)),
            "runtime_p95": millis(t.runtime_p(0.95)),
            "wait_avg": millis(t.wait_avg_ms),
        }
        for name, t in selectors.per_job(conn)[:JOBS_SHOWN]
    ]


# ---------------------------------------------------------------- charts


def jobs_per_minute_chart(conn: Redis) -> Any:
    points = metrics.series(conn, minutes=60)
    return charts.bar_chart(
        [
            charts.Series("jobs", [(minute * 60, jobs) for minute, jobs, _ in points], charts.PALETTE[0]),
            charts.Series("failed", [(minute * 60, failed) for minute, _, failed in points], charts.PALETTE[3]),
        ],
        title="Jobs per minute, last hour",
        width=1200,
        height=170,
    )


def snapshot_charts(*, hours: int, tenant: int | None) -> dict[str, Any]:
    """Throughput, runtime and wait over time from MetricSnapshot: one line
    per queue, or the selected tenant's line."""
    charts_by_kind: dict[str, Any] = _cached(f"charts:{hours}:{tenant}", lambda: _snapshot_charts(hours, tenant))
    return charts_by_kind


def _snapshot_charts(hours: int, tenant: int | None) -> dict[str, Any]:
    since = timezone.now() - timedelta(hours=hours)
    rows = MetricSnapshot.objects.filter(period_start__gte=since)
    if tenant is not None:
        rows = rows.filter(scope=MetricSnapshot.Scope.TENANT, name=str(tenant))
    else:
        rows = rows.filter(scope=MetricSnapshot.Scope.QUEUE)
    by_name: dict[str, list[MetricSnapshot]] = {}
    for row in rows.order_by("period_start").only(
        "name", "period_start", "jobs", "runtime_avg_ms", "runtime_p95_ms", "wait_avg_ms", "wait_p95_ms"
    ):
        by_name.setdefault(row.name, []).append(row)
    label = (lambda name: f"tenant {name}") if tenant is not None else (lambda name: name)
    period = 60 * 5
    x_format = charts.day_clock if hours > 24 else charts.clock
    suffix = f", last {hours} h" if hours < 168 else ", last 7 days"

    def series(value: Callable[[MetricSnapshot], float | None]) -> list[charts.Series]:
        return [
            charts.Series(label(name), [(row.period_start.timestamp(), value(row)) for row in snaps])
            for name, snaps in sorted(by_name.items())
        ]

    # Tenants have sums only (no histograms), so their lines are averages.
    runtime = (lambda r: r.runtime_avg_ms) if tenant is not None else (lambda r: r.runtime_p95_ms)
    wait = (lambda r: r.wait_avg_ms) if tenant is not None else (lambda r: r.wait_p95_ms)
    measure = "avg" if tenant is not None else "p95"
    # Sized for the three-column grid, so their text renders near its nominal size.
    chart = partial(charts.line_chart, width=440, height=200, x_format=x_format)
    return {
        "throughput": chart(series(lambda r: r.jobs * 60 / period), title=f"Throughput (jobs/min){suffix}"),
        "runtime": chart(series(runtime), title=f"Runtime {measure}{suffix}", unit=" ms"),
        "wait": chart(series(wait), title=f"Wait {measure}{suffix}", unit=" ms"),
    }


def _cached(name: str, build: Callable[[], Any]) -> Any:
    """Snapshot-derived figures, kept a minute per process and keyed by the
    newest snapshot row and ledger row, so a new snapshot or failure shows at once."""
    newest_snapshot = MetricSnapshot.objects.order_by("-pk").values_list("pk", flat=True).first()
    newest_failure = FailedJob.objects.order_by("-pk").values_list("pk", flat=True).first()
    key = f"queueing.dashboard:{name}:{newest_snapshot}:{newest_failure}"
    return cache.get_or_set(key, build, SNAPSHOT_CACHE_SECONDS)


# ---------------------------------------------------------------- status providers and their actions


@dataclass
class Panel:
    name: str
    report: status.StatusReport
    figures: list[tuple[str, str]] = field(default_factory=list)
    actions: list[status.PanelAction] = field(default_factory=list)


def status_panels() -> list[Panel]:
    panels = []
    for name, report in status.reports().items():
        figures = [
            (key.removesuffix("_seconds").replace("_", " "), _figure(key, value))
            for key, value in report.figures.items()
        ]
        actions = status.actions_of(name)
        panels.append(Panel(name, report, figures, actions))
    return panels


def _figure(key: str, value: float) -> str:
    if key.endswith("_seconds"):
        return duration(value)
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


# ---------------------------------------------------------------- the whole live view


def live(conn: Redis, filters: Filters) -> dict[str, Any]:
    statuses = selectors.queue_statuses(conn)
    failed, next_page = failed_page(filters)
    lock_list, more_locks = locks(conn)
    return {
        "overall": selectors.overall_status(statuses),
        "queues": queue_rows(conn, statuses),
        "queue_names": [s.name for s in statuses],
        "jobs_last_hour": sum(s.jobs_last_hour for s in statuses),
        "jobs_per_minute": f"{sum(s.jobs_per_minute for s in statuses):.1f}",
        "failed_counts": failed_counts(),
        "jobs_chart": jobs_per_minute_chart(conn),
        "charts": snapshot_charts(hours=filters.hours, tenant=filters.tenant),
        "workers": worker_rows(conn),
        "masters": masters(conn),
        "failed": failed,
        "failed_next": next_page,
        "recent": recent_jobs(conn, search=filters.q),
        "locks": lock_list,
        "more_locks": more_locks,
        "panels": status_panels(),
        "tenants": tenant_rows(conn, selected=filters.tenant),
        "job_classes": job_rows(conn),
        "chart_hours": CHART_HOURS,
    }
