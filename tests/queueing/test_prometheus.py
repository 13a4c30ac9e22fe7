from __future__ import annotations

import subprocess
import time

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from queueing import metrics
from queueing.jobs import heartbeat
from queueing.prometheus import TOP_TENANTS
from queueing.services import metrics_snapshot
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "scrape-token-for-tests"


@pytest.fixture(autouse=True)
def _token(settings) -> None:  # type: ignore[no-untyped-def]
    settings.METRICS_TOKEN = f"old-token {TOKEN}"  # two during a rotation


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_it_wants_the_bearer_token(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"Authorization: Bearer <METRICS_TOKEN>" in wrong.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer old-token").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405

    settings.METRICS_TOKEN = ""
    disabled = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert disabled.status_code == 503 and b"set METRICS_TOKEN" in disabled.content
    assert client.get("/healthz").content == b"ok"


def test_it_exports_what_real_jobs_did(client: Client, redis_conn: Redis) -> None:
    for n in range(3):
        jobs.record.dispatch(f"r{n}")
    jobs.tenant_job.dispatch(42, "x")  # fails: a ledger row, a failed attempt for tenant 42
    assert run_worker("default", "--burst").returncode == 0
    jobs.record_high.dispatch("waits")
    jobs.record_high.dispatch("waits too")
    time.sleep(0.1)

    samples = scrape(client)
    assert value(samples, "vito_redis_up") == 1 and value(samples, "vito_database_up") == 1
    assert value(samples, "vito_queue_depth", queue="high") == 2
    assert value(samples, "vito_queue_depth", queue="default") == 0
    assert value(samples, "vito_queue_oldest_wait_seconds", queue="high") >= 0.1
    assert value(samples, "vito_queue_oldest_wait_seconds", queue="default") == 0
    assert value(samples, "vito_queue_paused", queue="high") == 0
    assert value(samples, "vito_queue_jobs_last_5m", queue="default") == 4
    assert value(samples, "vito_queue_failed_last_5m", queue="default") == 1
    assert value(samples, "vito_queue_jobs_last_5m", queue="high") == 0
    assert value(samples, "vito_job_runs_last_5m", job="tests.queueing.jobs.record") == 3
    assert value(samples, "vito_job_failed_last_5m", job="tests.queueing.jobs.tenant_job") == 1
    # Runtime: a gauge histogram in seconds; +Inf holds every attempt, _gsum the seconds spent.
    assert value(samples, "vito_queue_runtime_seconds_bucket", queue="default", le="+Inf") == 4
    assert value(samples, "vito_queue_runtime_seconds_bucket", queue="default", le="300") == 4
    assert 0 < value(samples, "vito_queue_runtime_seconds_gsum", queue="default") < 5
    assert value(samples, "vito_job_runtime_seconds_bucket", job="tests.queueing.jobs.record", le="+Inf") == 3
    assert value(samples, "vito_queue_wait_seconds_bucket", queue="default", le="+Inf") == 4
    assert value(samples, "vito_failed_jobs", queue="default") == 1
    assert value(samples, "vito_failed_jobs_last_hour", queue="default") == 1
    assert value(samples, "vito_failed_jobs", queue="high") == 0
    assert value(samples, "vito_queue_workers", queue="high", state="idle") == 0
    assert value(samples, "vito_workers", state="busy") == 0
    # Status providers: outbox and webhook figures.
    assert value(samples, "vito_outbox_pending") == 0 and value(samples, "vito_outbox_lag_seconds") == 0
    assert value(samples, "vito_webhooks_failed_last_hour") == 0
    assert value(samples, "vito_status_problems", provider="outbox") == 0
    # django-rq's collector, reused for the registries (its per-worker series are dropped).
    assert value(samples, "rq_jobs", queue="high", status="queued") == 2
    assert not any(name.startswith(("rq_workers", "rq_job_successful")) for name, _ in samples)


def test_workers_are_counted_per_queue_and_state(
    client: Client, redis_conn: Redis, workers: list[subprocess.Popen[str]]
) -> None:
    workers.append(start_worker("high", "default", "--sleep", "0.2"))

    def per_queue(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], queue: str) -> float:
        return sum(
            v for (name, labels), v in samples.items() if name == "vito_queue_workers" and ("queue", queue) in labels
        )

    samples = wait_for(lambda: (found := scrape(client)) and per_queue(found, "high") == 1 and found, timeout=60)
    assert per_queue(samples, "default") == 1
    # A worker is "started" until its first job, then "idle" or "busy" (RQ's states).
    assert value(samples, "vito_queue_workers", queue="high", state="busy") == 0
    assert sum(v for (name, _), v in samples.items() if name == "vito_workers") == 1

    heartbeat.on_queue("high").dispatch("high")  # the scheduled heartbeat, run by the live worker
    beat = ("vito_queue_heartbeat_age_seconds", (("queue", "high"),))
    samples = wait_for(lambda: (found := scrape(client)) and beat in found and found)
    assert 0 <= samples[beat] < 60


def test_tenant_series_are_bounded_to_the_busiest_of_the_last_hour(client: Client, redis_conn: Redis) -> None:
    now = time.time()
    minute = metrics.current_minute(now)
    period = minute - minute % 5 - 5  # the newest complete 5-minute period: what queue_snapshot stores
    with redis_conn.pipeline() as pipe:
        for tenant in range(1, TOP_TENANTS + 6):
            for n in range(tenant):  # tenant N ran N jobs, one of them failed
                metrics.record(
                    pipe, queue="default", job_name="app.job", tenant_id=tenant, runtime_s=0.01, wait_s=0,
                    failed=n == 0, at=period * 60 + 1,
                )  # fmt: skip
        pipe.execute()
    metrics_snapshot(conn=redis_conn, at=now)
    samples = scrape(client)
    tenants = {dict(labels)["tenant"] for name, labels in samples if name == "vito_tenant_jobs_last_hour"}
    assert tenants == {str(t) for t in range(6, TOP_TENANTS + 6)}  # the busiest TOP_TENANTS, not all 25
    assert value(samples, "vito_tenant_jobs_last_hour", tenant=str(TOP_TENANTS + 5)) == TOP_TENANTS + 5
    assert value(samples, "vito_tenant_failed_last_hour", tenant="6") == 1
