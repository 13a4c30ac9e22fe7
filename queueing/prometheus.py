"""Prometheus series for ``/metrics``, read at scrape time from Redis (queues,
workers, the per-minute job metrics), PostgreSQL (the failed-job ledger) and
the status providers (outbox, webhooks). Nothing is kept in the web process,
so every gunicorn worker answers the same.

Windowed gauges, not counters: job counts and runtimes live in per-minute
Redis hashes that expire (queueing/metrics.py), so a sum over them falls when
an old minute drops out, which ``rate()`` would read as a counter reset. We
export the last 5 minutes as gauges (``vito_queue_jobs_last_5m`` / 300 is a
per-second rate) and the runtime/wait distributions as *gauge histograms*
(``histogram_quantile(0.95, vito_queue_runtime_seconds_bucket)``, no
``rate()``). The only true counters, RQ's per-worker totals, reset at every
worker recycle and carry the worker's name: see ``RQJobsCollector``.

Cardinality: ``queue`` labels come from settings.RQ_QUEUES, ``job`` labels
from the job catalog (jobs that ran in the last 5 minutes), ``state`` from
RQ's worker states; ``tenant`` only on the TOP_TENANTS busiest tenants of the
last hour (from the 5-minute snapshots), so the number of tenant series stays
bounded whatever the tenant count.

Scrape cost: one pipelined round trip for queue lengths, heads, pauses and
heartbeats; one for the head jobs' enqueue times; one for the 5 metric
minutes; RQ's worker listing (1 + 2 per worker); two SQL queries (ledger,
tenant snapshots); the status providers' queries; django-rq's registry counts.

docs/runtime.md, "/metrics (Prometheus)"."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta

import django_rq
from django.db.models import Count, Q, Sum
from django.utils import timezone
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from redis import Redis
from rq import Worker
from rq.job import Job
from rq.utils import utcparse

from lib.text import as_text
from queueing import keys, metrics, selectors, status
from queueing.dispatch import redis_connection
from queueing.models import FailedJob, MetricSnapshot

log = logging.getLogger(__name__)

WINDOW_MINUTES = 5
TOP_TENANTS = 20
WORKER_STATES = ("busy", "idle")  # always exported (as 0 when nobody is in them), others when seen


class VitoCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        redis_up = _section("Redis", families, lambda: redis_families(redis_connection()))
        database_up = _section("PostgreSQL", families, database_families)
        families += status_families(status.reports())  # a failing provider reports that itself
        families.append(GaugeMetricFamily("vito_redis_up", "1 when Redis answered this scrape", value=redis_up))
        families.append(
            GaugeMetricFamily("vito_database_up", "1 when PostgreSQL answered this scrape", value=database_up)
        )
        return families


def _section(what: str, out: list[Metric], build: Callable[[], list[Metric]]) -> int:
    # One store down must not hide the other's series: export what answered, plus vito_*_up.
    try:
        out += build()
    except Exception:
        log.exception("/metrics: reading %s failed", what)
        return 0
    return 1


def redis_families(conn: Redis) -> list[Metric]:
    names = selectors.queue_names()
    queues = [django_rq.get_queue(name, connection=conn) for name in names]
    with conn.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            pipe.lindex(queue.key, 0)
        pipe.smembers(keys.PAUSED_QUEUES)
        pipe.hgetall(keys.HEARTBEAT)
        raw = pipe.execute()
    sizes = dict(zip(names, raw[0:-2:2], strict=True))
    heads = {name: as_text(head) for name, head in zip(names, raw[1:-2:2], strict=True) if head}
    paused = {as_text(m) for m in raw[-2]}
    beats = {as_text(k): float(v) for k, v in raw[-1].items()}
    waits = _head_waits(conn, heads)
    now = time.time()

    depth = GaugeMetricFamily("vito_queue_depth", "Jobs waiting on the queue", labels=["queue"])
    oldest = GaugeMetricFamily(
        "vito_queue_oldest_wait_seconds",
        "How long the job at the head of the queue has waited (0 when empty)",
        labels=["queue"],
    )
    is_paused = GaugeMetricFamily("vito_queue_paused", "1 while the queue is paused (queue_pause)", labels=["queue"])
    beat_age = GaugeMetricFamily(
        "vito_queue_heartbeat_age_seconds",
        "Seconds since the scheduled heartbeat job last ran on the queue",
        labels=["queue"],
    )
    for name in names:
        depth.add_metric([name], sizes[name])
        oldest.add_metric([name], waits.get(name, 0.0))
        is_paused.add_metric([name], 1 if name in paused else 0)
        if name in beats:
            beat_age.add_metric([name], max(0.0, now - beats[name]))
    return [depth, oldest, is_paused, beat_age, *worker_families(conn, names), *job_families(conn, names)]


def _head_waits(conn: Redis, heads: dict[str, str]) -> dict[str, float]:
    """Seconds each queue's head job has waited (selectors.oldest_wait, pipelined)."""
    if not heads:
        return {}
    with conn.pipeline(transaction=False) as pipe:
        for job_id in heads.values():
            pipe.hget(Job.key_for(job_id), "enqueued_at")
        stamps = pipe.execute()
    out = {}
    for name, stamp in zip(heads, stamps, strict=True):
        if stamp:
            try:
                out[name] = max(0.0, time.time() - utcparse(as_text(stamp)).timestamp())
            except ValueError:
                continue
    return out


def worker_families(conn: Redis, names: list[str]) -> list[Metric]:
    # RQ's listing, not selectors.workers(): a scrape needs no job in hand or RSS.
    per_queue: Counter[tuple[str, str]] = Counter()
    per_state: Counter[str] = Counter({state: 0 for state in WORKER_STATES})
    for worker in Worker.all(connection=conn):
        state = str(worker.get_state())
        per_state[state] += 1
        for queue in worker.queue_names():
            per_queue[(queue, state)] += 1
    for name in names:
        for state in WORKER_STATES:
            per_queue.setdefault((name, state), 0)
    by_queue = GaugeMetricFamily(
        "vito_queue_workers", "Live workers that consume the queue, by state", labels=["queue", "state"]
    )
    for (queue, state), n in sorted(per_queue.items()):
        by_queue.add_metric([queue, state], n)
    total = GaugeMetricFamily("vito_workers", "Live workers, by state", labels=["state"])
    for state, n in sorted(per_state.items()):
        total.add_metric([state], n)
    return [by_queue, total]


def job_families(conn: Redis, names: list[str]) -> list[Metric]:
    recent = metrics.window(conn, minutes=WINDOW_MINUTES)
    window = f"in the last {WINDOW_MINUTES} minutes (the current minute included)"
    out: list[Metric] = []
    # Queues always get a series (0 when idle); a job only while it ran in the window.
    job_names = sorted(name for scope, name in recent if scope == "j")
    for scope, label, members, prefix, runs_name in (
        ("q", "queue", names, "vito_queue", "jobs"),
        ("j", "job", job_names, "vito_job", "runs"),
    ):
        runs = GaugeMetricFamily(
            f"{prefix}_{runs_name}_last_{WINDOW_MINUTES}m",
            f"Job attempts finished {window}, by {label}",
            labels=[label],
        )
        failed = GaugeMetricFamily(
            f"{prefix}_failed_last_{WINDOW_MINUTES}m",
            f"Job attempts that failed {window} (retried ones included), by {label}",
            labels=[label],
        )
        runtime = GaugeHistogramMetricFamily(
            f"{prefix}_runtime_seconds", f"Job runtime {window}, by {label} (a gauge histogram)", labels=[label]
        )
        for name in members:
            totals = recent.get((scope, name), metrics.Totals())
            runs.add_metric([name], totals.jobs)
            failed.add_metric([name], totals.failed)
            runtime.add_metric([name], _buckets(totals.runtime_hist), totals.runtime_ms / 1000)
        out += [runs, failed, runtime]
    wait = GaugeHistogramMetricFamily(
        "vito_queue_wait_seconds",
        f"Wait from enqueue to start {window}, by queue (a gauge histogram)",
        labels=["queue"],
    )
    for name in names:
        totals = recent.get(("q", name), metrics.Totals())
        wait.add_metric([name], _buckets(totals.wait_hist), totals.wait_ms / 1000)
    return [*out, wait]


def _buckets(hist: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (ms bounds, last one open) -> cumulative ``le`` buckets in seconds."""
    out: list[tuple[str, float]] = []
    seen = 0
    for bound, count in zip(metrics.BUCKETS_MS, hist, strict=False):
        seen += count
        out.append((f"{bound / 1000:g}", seen))
    out.append(("+Inf", seen + hist[-1]))
    return out


def database_families() -> list[Metric]:
    return [*ledger_families(), *tenant_families()]


def ledger_families() -> list[Metric]:
    hour_ago = timezone.now() - timedelta(hours=1)
    rows = FailedJob.objects.values("queue").annotate(
        total=Count("id"), last_hour=Count("id", filter=Q(failed_at__gte=hour_ago))
    )
    total = GaugeMetricFamily(
        "vito_failed_jobs",
        "Jobs in the failed-job ledger (failed finally, not yet retried or forgotten)",
        labels=["queue"],
    )
    last_hour = GaugeMetricFamily(
        "vito_failed_jobs_last_hour", "Jobs that failed finally in the last hour (ledger rows)", labels=["queue"]
    )
    counts = {row["queue"]: row for row in rows}
    for name in sorted(set(selectors.queue_names()) | set(counts)):
        row = counts.get(name, {"total": 0, "last_hour": 0})
        total.add_metric([name], row["total"])
        last_hour.add_metric([name], row["last_hour"])
    return [total, last_hour]


def tenant_families() -> list[Metric]:
    """The TOP_TENANTS busiest tenants of the last hour, from the 5-minute
    snapshots (queue_snapshot): one indexed query, where the Redis minutes
    would mean folding an hour of every tenant's counters at each scrape."""
    since = timezone.now() - timedelta(hours=1)
    rows = (
        MetricSnapshot.objects.filter(scope=MetricSnapshot.Scope.TENANT, period_start__gte=since)
        .values("name")
        .annotate(jobs=Sum("jobs"), failed=Sum("failed"))
        .order_by("-jobs", "name")[:TOP_TENANTS]
    )
    about = f"in the last hour of complete 5-minute snapshots, the {TOP_TENANTS} busiest tenants only (tenant id)"
    jobs = GaugeMetricFamily("vito_tenant_jobs_last_hour", f"Job attempts {about}", labels=["tenant"])
    failed = GaugeMetricFamily("vito_tenant_failed_last_hour", f"Failed job attempts {about}", labels=["tenant"])
    for row in rows:
        jobs.add_metric([row["name"]], row["jobs"] or 0)
        failed.add_metric([row["name"]], row["failed"] or 0)
    return [jobs, failed]


def status_families(reports: dict[str, status.StatusReport]) -> list[Metric]:
    """``vito_<provider>_<figure>`` per figure, and the problems per provider."""
    out: list[Metric] = []
    problems = GaugeMetricFamily(
        "vito_status_problems", "Problems a status provider reports (alerts, queue_health)", labels=["provider"]
    )
    for provider, report in sorted(reports.items()):
        problems.add_metric([provider], len(report.problems))
        for figure, value in sorted(report.figures.items()):
            out.append(
                GaugeMetricFamily(_metric_name(f"vito_{provider}_{figure}"), f"{report.title}: {figure}", value=value)
            )
    return [*out, problems]


def _metric_name(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", text)


class RQJobsCollector(Collector):
    """django-rq's own collector, reused for ``rq_jobs{queue,status}`` (the
    registries: queued, started, finished, failed, deferred, scheduled). Its
    per-worker series (``rq_workers``, ``rq_job_successful_total``...) are left
    out: they are labelled with the worker's name, which changes each time a
    worker recycles itself (--max-jobs, --max-time, --memory), so each recycle
    would start new series; ``vito_queue_workers`` says the same per queue."""

    def __init__(self) -> None:
        from django_rq.contrib.prometheus import RQCollector

        self.inner = RQCollector()

    def collect(self) -> Iterable[Metric]:
        try:
            families = self.inner.collect()  # type: ignore[no-untyped-call]  # django-rq leaves it unannotated
            return [family for family in families if family.name == "rq_jobs"]
        except Exception:
            log.exception("/metrics: django-rq's collector failed")  # vito_redis_up says why
            return []


_registry: CollectorRegistry | None = None


def registry() -> CollectorRegistry:
    """One registry per process; collectors read everything afresh per scrape."""
    global _registry
    if _registry is None:
        built = CollectorRegistry(auto_describe=False)
        built.register(VitoCollector())
        built.register(RQJobsCollector())
        _registry = built
    return _registry
