"""The release gate's checks (``queue_health``): is this deployment fit to take
traffic and run its background work?

Passes only when Redis and PostgreSQL answer, every configured queue has a
live worker (paused or not: a release must not leave a queue unconsumed), no
queue fails more than QUEUE_ALERT_FAILURE_RATE of its attempts over the last 5
minutes (from QUEUE_ALERT_FAILURE_MIN_JOBS attempts on, as the alert), and no
status provider reports a problem (the outbox: lag over
OUTBOX_LAG_ALERT_SECONDS or stuck messages; webhooks left unprocessed).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection as db_connection
from redis import Redis

from queueing import alerts, metrics, selectors, status
from queueing.dispatch import redis_connection


@dataclass(frozen=True)
class Check:
    name: str  # "redis", "postgresql", "workers:<queue>", "failure_rate:<queue>", "status:<provider>"
    ok: bool
    detail: str


def run_checks(conn: Redis | None = None) -> list[Check]:
    conn = conn or redis_connection()
    checks = [redis_check(conn), database_check()]
    if checks[0].ok:
        inputs = alerts.gather(conn)
        checks += [worker_check(queue) for queue in inputs.queues]
        limits = alerts.Thresholds.from_settings()
        for queue in inputs.queues:
            cond = alerts.failure_condition(queue.name, inputs.recent.get(queue.name, metrics.Totals()), limits)
            checks.append(Check(cond.key, not cond.firing, cond.message))
        reports = inputs.reports
    else:
        checks += [Check(f"workers:{q}", False, "not checked: Redis does not answer") for q in selectors.queue_names()]
        reports = status.reports()  # PostgreSQL-backed: still worth reporting
    for name, report in sorted(reports.items()):
        figures = ", ".join(f"{k} {v:g}" for k, v in report.figures.items())
        checks.append(Check(f"status:{name}", not report.problems, "; ".join(report.problems) or figures))
    return checks


def redis_check(conn: Redis) -> Check:
    try:
        conn.ping()
    except Exception as exc:
        return Check("redis", False, f"Redis does not answer: {exc} (check REDIS_URL and the server)")
    return Check("redis", True, "PING answered")


def database_check() -> Check:
    try:
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check("postgresql", False, f"PostgreSQL does not answer: {first_line} (check DATABASE_URL)")
    return Check("postgresql", True, "SELECT 1 answered")


def worker_check(queue: selectors.QueueStatus) -> Check:
    paused = " (queue paused)" if queue.paused else ""
    if queue.workers:
        return Check(f"workers:{queue.name}", True, f"{queue.workers} live worker(s){paused}")
    return Check(
        f"workers:{queue.name}",
        False,
        f"no live worker consumes queue {queue.name}{paused}: start `rqworker {queue.name}` (supervisord)",
    )
