"""``rqworker --concurrency N``: N jobs in flight in one process, each with the
single-job worker's guarantees (docs/runtime.md, "Concurrency")."""

from __future__ import annotations

import signal
import time

import pytest
from redis import Redis
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus

from queueing.dispatch import get_queue
from queueing.models import FailedJob
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _spans() -> list[tuple[str, float, float, int]]:
    spans = []
    for entry in jobs.effects("spans"):
        tag, start, end, backend = entry.split(":")
        spans.append((tag, float(start), float(end), int(backend)))
    return spans


def test_jobs_run_side_by_side_each_with_its_own_database_connection(redis_conn: Redis) -> None:
    for i in range(8):
        jobs.in_flight.dispatch(f"j{i}", 1.5)
    assert run_worker("default", "--burst", "--concurrency", "8").returncode == 0
    spans = _spans()
    assert sorted(jobs.effects("effects")) == sorted(f"j{i}" for i in range(8))
    # Every job started before any ended: all eight were in flight at once.
    assert max(start for _, start, _, _ in spans) < min(end for _, _, end, _ in spans)
    assert len({backend for *_, backend in spans}) == 8  # Django's connections are per thread


def test_a_job_over_its_timeout_is_stopped_while_its_siblings_finish(redis_conn: Redis) -> None:
    jobs.overruns.dispatch("late")
    for i in range(7):
        jobs.ticker.dispatch(f"s{i}", 2)
    assert run_worker("default", "--burst", "--concurrency", "8").returncode == 0
    failed = FailedJob.objects.get()
    assert failed.job_name.endswith("overruns")
    assert failed.exception_class == "rq.timeouts.JobTimeoutException"
    assert "timeout" in failed.message
    assert jobs.effects("hooks") == ["late:JobTimeoutException"]
    assert sorted(jobs.effects("effects")) == sorted(f"s{i}" for i in range(7))  # not "late"


def test_sigterm_finishes_every_job_in_hand_then_exits_zero(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    for i in range(4):
        jobs.ticker.dispatch(f"g{i}", 2)
    for i in range(3):
        jobs.record.dispatch(f"queued{i}")
    proc = start_worker("default", "--sleep", "1", "--concurrency", "4")
    workers.append(proc)
    wait_for(lambda: len(jobs.effects("started")) == 4)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert sorted(jobs.effects("effects")) == [f"g{i}" for i in range(4)]
    assert get_queue("default").count == 3  # what was not claimed stays queued


def test_a_second_sigterm_interrupts_and_settles_every_job(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    for i in range(4):
        jobs.ticker.dispatch(f"c{i}", 60)
    proc = start_worker("default", "--sleep", "1", "--concurrency", "4")
    workers.append(proc)
    wait_for(lambda: len(jobs.effects("started")) == 4)
    proc.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # RQ ignores a repeat within one second
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    failed = wait_for(lambda: FailedJob.objects.count() == 4 and FailedJob.objects.all())
    assert {f.exception_class for f in failed} == {"builtins.SystemExit"}
    assert jobs.effects("effects") == []
    assert redis_conn.zcard(get_queue("default").started_job_registry.key) == 0


def test_stop_job_stops_that_job_only(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    target = jobs.ticker.dispatch("target", 60)
    for i in range(3):
        jobs.ticker.dispatch(f"other{i}", 2)
    proc = start_worker("default", "--sleep", "1", "--concurrency", "4")
    workers.append(proc)
    wait_for(lambda: len(jobs.effects("started")) == 4)
    send_stop_job_command(redis_conn, target.job_id)
    wait_for(lambda: Job.fetch(target.job_id, connection=redis_conn).get_status() == JobStatus.STOPPED)
    wait_for(lambda: len(jobs.effects("effects")) == 3)
    assert sorted(jobs.effects("effects")) == ["other0", "other1", "other2"]
    assert FailedJob.objects.get().exception_class.endswith("JobStopped")


def test_a_jobs_own_sys_exit_is_a_failure_and_its_thread_goes_on(redis_conn: Redis) -> None:
    jobs.exits.dispatch("bye")
    for i in range(12):
        jobs.ticker.dispatch(f"after{i}", 0.1)
    result = run_worker("default", "--burst", "--concurrency", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert FailedJob.objects.get().exception_class == "builtins.SystemExit"
    assert sorted(jobs.effects("effects")) == sorted(f"after{i}" for i in range(12))


def test_max_jobs_counts_claims_then_exits_zero(redis_conn: Redis) -> None:
    for i in range(10):
        jobs.ticker.dispatch(f"m{i}", 0.2)
    result = run_worker("default", "--max-jobs", "6", "--concurrency", "4", "--sleep", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(jobs.effects("effects")) == 6
    assert get_queue("default").count == 4


def test_a_sigkilled_workers_jobs_are_all_retried_by_the_reaper(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    for i in range(8):
        jobs.flaky.dispatch(f"k{i}", 0)  # tries=3: a reaped attempt is retried
    for i in range(8):
        jobs.ticker.dispatch(f"victim{i}", 60)  # tries=1: a reaped attempt goes to the ledger
    victim = start_worker("default", "--sleep", "1", "--concurrency", "8")
    workers.append(victim)
    wait_for(lambda: len(jobs.effects("started")) == 8)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    workers.append(start_worker("default", "--sleep", "1", "--concurrency", "8"))
    wait_for(lambda: FailedJob.objects.count() == 8, timeout=150)
    assert {f.exception_class for f in FailedJob.objects.all()} == {"rq.exceptions.AbandonedJobError"}
    assert sorted(jobs.effects("effects")) == sorted(f"k{i}" for i in range(8))
