from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from redis import Redis

from queueing import metrics, selectors
from queueing.dispatch import get_queue
from queueing.models import MetricSnapshot
from queueing.services import metrics_snapshot
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_workers_count_runtime_wait_failures_and_tenants_per_minute(redis_conn: Redis) -> None:
    for n in range(3):
        jobs.record.dispatch(f"r{n}")
    jobs.sleeper.dispatch("slow", 0.3)
    jobs.tenant_job.dispatch(42, "x")  # fails (tries=1): one failed attempt for tenant 42
    assert run_worker("default", "--burst").returncode == 0

    totals = metrics.window(redis_conn, minutes=5)
    queue = totals[("q", "default")]
    assert (queue.jobs, queue.failed) == (5, 1)
    assert (queue.runtime_p(0.95) or 0) >= 250  # the 0.3 s sleeper
    assert queue.wait_avg_ms is not None and queue.waited == 5
    assert totals[("j", "tests.queueing.jobs.record")].jobs == 3
    assert totals[("j", "tests.queueing.jobs.tenant_job")].failed == 1
    assert totals[("t", "42")].jobs == 1 and totals[("t", "42")].failed == 1
    assert sum(jobs for _, jobs, _ in metrics.series(redis_conn, minutes=5)) == 5


def test_snapshot_stores_complete_periods_idempotently_and_trims_history(redis_conn: Redis, settings) -> None:  # type: ignore[no-untyped-def]
    settings.QUEUE_METRICS_RETENTION_DAYS = 7
    now = time.time()
    minute = metrics.current_minute(now)
    period_start = minute - minute % 5 - 5  # the newest complete 5-minute period
    with redis_conn.pipeline() as pipe:
        for i, runtime in enumerate((0.004, 0.02, 0.02, 3.0)):
            metrics.record(
                pipe, queue="high", job_name="a.job", tenant_id=7, runtime_s=runtime, wait_s=0.1,
                failed=i == 3, at=(period_start + i % 5) * 60 + 1,
            )  # fmt: skip
        pipe.execute()
    old = MetricSnapshot.objects.create(
        period_start=datetime.now(UTC) - timedelta(days=8), scope="queue", name="high", jobs=1
    )
    first = metrics_snapshot(conn=redis_conn, at=now)
    second = metrics_snapshot(conn=redis_conn, at=now)
    assert first == second
    assert not MetricSnapshot.objects.filter(pk=old.pk).exists()
    start = datetime.fromtimestamp(period_start * 60, UTC)
    row = MetricSnapshot.objects.get(scope="queue", name="high", period_start=start)
    assert (row.jobs, row.failed) == (4, 1)
    assert row.runtime_p50_ms == 25 and row.runtime_p95_ms == 5000
    assert row.wait_avg_ms == pytest.approx(100)
    assert MetricSnapshot.objects.get(scope="tenant", name="7", period_start=start).jobs == 4
    assert MetricSnapshot.objects.get(scope="job", name="a.job", period_start=start).failed == 1
    # Idle queues get rows too (a flat line on the chart, not a gap).
    assert MetricSnapshot.objects.filter(scope="queue", name="default", period_start=start, jobs=0).exists()
    assert MetricSnapshot.objects.filter(scope="queue", name="high", period_start=start).count() == 1


def test_queue_snapshot_command_and_bad_arguments(redis_conn: Redis) -> None:
    call_command("queue_snapshot", "--catch-up", "2")
    assert MetricSnapshot.objects.filter(scope="queue").count() == 2 * 2  # two queues, two periods
    with pytest.raises(CommandError):
        call_command("queue_snapshot", "--catch-up", "0")


def test_queue_statuses_show_size_oldest_wait_and_live_workers(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    get_queue("default")  # warm
    jobs.record.dispatch("waiting")
    time.sleep(0.2)
    status = {s.name: s for s in selectors.queue_statuses(redis_conn)}
    assert status["default"].size == 1 and (status["default"].oldest_wait_s or 0) >= 0.2
    assert status["high"].size == 0 and status["high"].oldest_wait_s is None
    assert selectors.overall_status(list(status.values())) == "inactive"

    workers.append(start_worker("high", "default", "--sleep", "0.2"))
    wait_for(lambda: selectors.workers(redis_conn) and selectors.queue_statuses(redis_conn)[1].size == 0)
    rows = selectors.workers(redis_conn)
    assert rows[0].queues == ["high", "default"] and rows[0].pid == workers[0].pid
    assert wait_for(lambda: selectors.workers(redis_conn)[0].rss_mb)
    assert selectors.overall_status(selectors.queue_statuses(redis_conn)) == "active"
