from __future__ import annotations

import signal
import time

import pytest
from redis import Redis

from queueing import keys
from queueing.dispatch import get_queue
from queueing.models import FailedJob
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_tries_means_attempts_in_total(redis_conn: Redis) -> None:
    jobs.flaky.dispatch("ok-on-third", 2)
    jobs.flaky.dispatch("never", 99)
    assert run_worker("default", "--burst").returncode == 0
    assert jobs.effects("effects") == ["ok-on-third"]
    attempts = jobs.effects("attempts")
    assert attempts.count("ok-on-third:3") == 1 and "ok-on-third:4" not in attempts
    assert [a for a in attempts if a.startswith("never")] == ["never:1", "never:2", "never:3"]
    failed = FailedJob.objects.get()
    assert failed.job_name == "tests.queueing.jobs.flaky"
    assert failed.attempts == 3
    assert failed.exception_class == "builtins.ConnectionError"
    assert "attempt 3 of never failed" in failed.message
    assert "Traceback" in failed.traceback and "raise ConnectionError" in failed.traceback
    assert failed.args == ["never", 99]
    assert failed.queue == "default" and failed.worker


def test_a_permanent_error_fails_at_once_and_the_hook_runs_once(redis_conn: Redis) -> None:
    jobs.rejects.dispatch("bad")
    jobs.always_fails.dispatch("boom")
    assert run_worker("default", "--burst").returncode == 0
    assert jobs.effects("attempts").count("bad") == 1
    assert jobs.effects("attempts").count("boom") == 2
    assert sorted(jobs.effects("hooks")) == ["bad:InvalidPayload", "boom:RuntimeError"]
    assert FailedJob.objects.count() == 2
    assert FailedJob.objects.get(job_name__endswith="rejects").attempts == 1


def test_a_job_over_its_timeout_is_stopped_and_recorded(redis_conn: Redis) -> None:
    jobs.too_slow.dispatch("slow")
    started = time.monotonic()
    assert run_worker("default", "--burst").returncode == 0
    assert time.monotonic() - started < 30
    failed = FailedJob.objects.get()
    assert failed.exception_class == "rq.timeouts.JobTimeoutException"
    assert jobs.effects("hooks") == ["slow:JobTimeoutException"]


def test_worker_tries_and_backoff_flags_apply_to_jobs_without_their_own(redis_conn: Redis) -> None:
    jobs.tenant_job.dispatch(7, "x")
    assert run_worker("default", "--burst", "--tries", "2", "--backoff", "0").returncode == 0
    failed = FailedJob.objects.get()
    assert failed.attempts == 2
    assert failed.tenant_id == 7


def test_high_is_drained_before_default(redis_conn: Redis) -> None:
    for i in range(3):
        jobs.record.dispatch(f"d{i}")
    for i in range(3):
        jobs.record_high.dispatch(f"h{i}")
    assert run_worker("high", "default", "--burst").returncode == 0
    assert jobs.effects("effects") == ["high:h0", "high:h1", "high:h2", "d0", "d1", "d2"]


def test_max_jobs_finishes_and_exits_zero(redis_conn: Redis) -> None:
    for i in range(5):
        jobs.record.dispatch(f"j{i}")
    result = run_worker("default", "--max-jobs", "2", "--sleep", "1")
    assert result.returncode == 0
    assert "--max-jobs 2 reached" in result.stdout + result.stderr
    assert len(jobs.effects("effects")) == 2
    assert get_queue("default").count == 3


def test_max_time_exits_zero_when_idle(redis_conn: Redis) -> None:
    started = time.monotonic()
    result = run_worker("default", "--max-time", "2", "--sleep", "1")
    assert result.returncode == 0
    assert 2 <= time.monotonic() - started < 30
    assert "--max-time 2s reached" in result.stdout + result.stderr


def test_memory_limit_recycles_the_worker_after_its_job(redis_conn: Redis) -> None:
    jobs.record.dispatch("a")
    jobs.record.dispatch("b")
    result = run_worker("default", "--memory", "1", "--sleep", "1")
    assert result.returncode == 0
    assert "--memory 1 MB reached" in result.stdout + result.stderr
    assert jobs.effects("effects") == ["a"]  # finished the job in hand, took no other


def test_pause_and_continue_one_queue(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    from django.core.management import call_command

    call_command("queue_pause", "default")
    jobs.record.dispatch("waits")
    jobs.record_high.dispatch("flows")
    workers.append(start_worker("high", "default", "--sleep", "1"))
    wait_for(lambda: "high:flows" in jobs.effects("effects"))
    time.sleep(2)
    assert "waits" not in jobs.effects("effects")
    call_command("queue_continue", "default")
    wait_for(lambda: "waits" in jobs.effects("effects"))


def test_queue_restart_makes_running_workers_finish_and_exit(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    from django.core.management import call_command

    workers.extend([start_worker("default", "--sleep", "1"), start_worker("high", "--sleep", "1")])
    wait_for(lambda: redis_conn.scard("rq:workers") == 2)
    jobs.sleeper.dispatch("in-hand", 2)
    wait_for(lambda: jobs.effects("started") == ["in-hand"])
    call_command("queue_restart")
    for proc in workers:
        assert proc.wait(timeout=30) == 0
    assert jobs.effects("effects") == ["in-hand"]


def test_sigterm_finishes_the_job_in_hand_then_exits_zero(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    jobs.sleeper.dispatch("graceful", 3)
    jobs.record.dispatch("not-started")
    proc = start_worker("default", "--sleep", "1")
    workers.append(proc)
    wait_for(lambda: jobs.effects("started") == ["graceful"])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert jobs.effects("effects") == ["graceful"]
    assert get_queue("default").count == 1  # the next job stays queued


def test_a_second_sigterm_stops_now_and_the_job_is_not_lost(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    jobs.flaky.dispatch("interrupted", 0)  # warm up: make sure the worker is running jobs
    jobs.sleeper.dispatch("cut", 30)
    proc = start_worker("default", "--sleep", "1")
    workers.append(proc)
    wait_for(lambda: jobs.effects("started") == ["cut"])
    proc.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # RQ ignores a repeat within one second (duplicate delivery)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    # tries=1: the interrupted job is recorded as failed, not silently dropped.
    failed = wait_for(lambda: FailedJob.objects.filter(job_name__endswith="sleeper").first())
    assert failed.exception_class == "builtins.SystemExit"
    assert "cut" not in jobs.effects("effects")


def test_a_sigkilled_workers_job_is_retried_by_the_reaper(redis_conn: Redis, workers: list, monkeypatch) -> None:  # type: ignore[no-untyped-def,type-arg]
    jobs.flaky.dispatch("killed-mid-job", 0)
    jobs.sleeper.dispatch("victim", 60)
    victim = start_worker("default", "--sleep", "1")
    workers.append(victim)
    wait_for(lambda: jobs.effects("started") == ["victim"])
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    killed_at = time.monotonic()
    # What the django-rq dashboard does when an operator looks: RQ's own cleanup
    # of the started registry. It must leave our claim alone (or the ledger and
    # the failure hook would be bypassed).
    get_queue("default").started_job_registry.cleanup(time.time() + 3600)
    assert get_queue("default").failed_job_registry.count == 0
    # A fresh worker on another queue still reaps `default` (sleeper has tries=1: ledger).
    workers.append(start_worker("high", "--sleep", "1"))
    failed = wait_for(lambda: FailedJob.objects.filter(job_name__endswith="sleeper").first(), timeout=150)
    assert time.monotonic() - killed_at < 120
    assert failed.exception_class == "rq.exceptions.AbandonedJobError"
    # The ledger row is written just before the Redis pipeline that drops the claim: wait for that too.
    wait_for(
        lambda: (
            redis_conn.zcard(get_queue("default").started_job_registry.key) == 0
            and redis_conn.zcard(keys.claims("default")) == 0
        ),
        timeout=10,
    )


def test_worker_survives_its_database_connection_being_killed(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    from django.db import connection

    proc = start_worker("default", "--sleep", "1")
    workers.append(proc)
    jobs.tenant_job.dispatch(1, "first")  # fails → ledger write opens a DB connection
    wait_for(lambda: FailedJob.objects.count() == 1)
    with connection.cursor() as cur:  # what a PostgreSQL restart does to the worker's session
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    jobs.tenant_job.dispatch(2, "second")
    wait_for(lambda: FailedJob.objects.count() == 2)
    assert proc.poll() is None


def test_unknown_queue_is_a_usage_error(redis_conn: Redis) -> None:
    result = run_worker("nope", "--burst")
    assert result.returncode == 2
    assert "unknown queue(s): nope" in result.stderr
    assert run_worker("default", "--max-jobs", "zero").returncode == 2


def test_paused_queue_names_are_kept_in_redis(redis_conn: Redis) -> None:
    from django.core.management import call_command

    call_command("queue_pause", "high")
    assert redis_conn.smembers(keys.PAUSED_QUEUES) == {b"high"}
    call_command("queue_continue", "high")
    assert redis_conn.smembers(keys.PAUSED_QUEUES) == set()
