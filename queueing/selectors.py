"""Reads for the operations console, alerts, /metrics and queue_health: queue
sizes and waits, live workers, and the per-minute job metrics folded into
figures. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.utils import now

from lib.text import as_text
from queueing import control, metrics
from queueing.dispatch import get_queue, redis_connection


def queue_names() -> list[str]:
    return list(settings.RQ_QUEUES)


@dataclass(frozen=True)
class QueueStatus:
    name: str
    size: int
    oldest_wait_s: float | None
    paused: bool
    workers: int
    jobs_last_hour: int
    failed_last_hour: int
    jobs_per_minute: float  # over the last 5 minutes
    runtime_p50_ms: float | None
    runtime_p95_ms: float | None
    wait_avg_ms: float | None
    wait_p95_ms: float | None


@dataclass(frozen=True)
class WorkerRow:
    name: str
    host: str
    pid: int | None
    queues: list[str]
    state: str
    current_job: str
    current_job_name: str
    elapsed_s: float | None
    rss_mb: float | None
    jobs_done: int
    failed: int
    birth: datetime | None


def oldest_wait(conn: Redis, queue: Queue) -> float | None:
    """Seconds the job at the head of ``queue`` has waited (None when empty)."""
    head = queue.get_job_ids(0, 1)
    if not head:
        return None
    enqueued = conn.hget(Job.key_for(head[0]), "enqueued_at")
    if not enqueued:
        return None
    text = enqueued.decode() if isinstance(enqueued, bytes) else str(enqueued)
    try:
        stamp = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, (now() - stamp).total_seconds())


def workers(conn: Redis) -> list[WorkerRow]:
    """Live workers (their Redis key has not expired), with the job in hand."""
    rows = []
    for worker in Worker.all(connection=conn):
        current = worker.get_current_job_id() or ""
        job_name, elapsed = "", None
        if current:
            job = Job.fetch(current, connection=conn) if conn.exists(Job.key_for(current)) else None
            if job is not None:
                job_name = job.func_name or ""
                if job.started_at:
                    elapsed = max(0.0, (now() - job.started_at).total_seconds())
        raw_rss = conn.hget(worker.key, "rss_mb")
        rows.append(
            WorkerRow(
                name=worker.name,
                host=worker.hostname or "",
                pid=worker.pid,
                queues=worker.queue_names(),
                state=as_text(worker.get_state()),
                current_job=current,
                current_job_name=job_name,
                elapsed_s=elapsed,
                rss_mb=float(raw_rss) if raw_rss else None,
                jobs_done=worker.successful_job_count,
                failed=worker.failed_job_count,
                birth=worker.birth_date,
            )
        )
    return sorted(rows, key=lambda row: row.name)


def queue_statuses(conn: Redis | None = None) -> list[QueueStatus]:
    conn = conn or redis_connection()
    live = workers(conn)
    paused = control.paused_queues(conn)
    hour = metrics.window(conn, minutes=60)
    recent = metrics.window(conn, minutes=5)
    out = []
    for name in queue_names():
        queue = get_queue(name)
        totals = hour.get(("q", name), metrics.Totals())
        last5 = recent.get(("q", name), metrics.Totals())
        out.append(
            QueueStatus(
                name=name,
                size=queue.count,
                oldest_wait_s=oldest_wait(conn, queue),
                paused=name in paused,
                workers=sum(1 for w in live if name in w.queues),
                jobs_last_hour=totals.jobs,
                failed_last_hour=totals.failed,
                jobs_per_minute=last5.jobs / 5,
                runtime_p50_ms=totals.runtime_p(0.5),
                runtime_p95_ms=totals.runtime_p(0.95),
                wait_avg_ms=totals.wait_avg_ms,
                wait_p95_ms=totals.wait_p(0.95),
            )
        )
    return out


def overall_status(statuses: list[QueueStatus]) -> str:
    """Horizon's badge: inactive (no live worker), paused (every queue paused), active."""
    if not any(s.workers for s in statuses):
        return "inactive"
    if statuses and all(s.paused for s in statuses):
        return "paused"
    return "active"


def per_tenant(conn: Redis, *, minutes: int = 60) -> list[tuple[str, metrics.Totals]]:
    """Tenants by jobs run in the last ``minutes`` (busiest first)."""
    totals = metrics.window(conn, minutes=minutes)
    rows = [(name, t) for (scope, name), t in totals.items() if scope == "t"]
    return sorted(rows, key=lambda row: -row[1].jobs)


def per_job(conn: Redis, *, minutes: int = 60) -> list[tuple[str, metrics.Totals]]:
    totals = metrics.window(conn, minutes=minutes)
    rows = [(name, t) for (scope, name), t in totals.items() if scope == "j"]
    return sorted(rows, key=lambda row: -row[1].jobs)
