"""What code written for RQ gets on our workers: plain ``queue.enqueue`` jobs,
their callbacks, and Sentry's RQ integration (docs/rq-contract.md)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import django_rq
import pytest
from django.conf import settings
from django_rq.settings import get_queues_list
from redis import Redis
from rq import Callback
from rq.job import Dependency, Job, JobStatus
from rq.rate_limit import RateLimit
from rq.repeat import Repeat
from rq.results import Result

from queueing import reaper
from queueing.dispatch import get_queue
from queueing.models import FailedJob
from tests.queueing import jobs, rq_funcs
from tests.queueing.conftest import run_worker, start_worker, wait_for, worker_env
from tests.sentry_ingest import SentryIngest

pytestmark = pytest.mark.django_db(transaction=True)


def django_rq_index(queue: str) -> int:
    """The queue's index in django-rq's URLs (its own order, not RQ_QUEUES')."""
    return [config["name"] for config in get_queues_list()].index(queue)


@pytest.fixture
def sentry() -> Iterator[SentryIngest]:
    ingest = SentryIngest()
    yield ingest
    ingest.stop()


def test_a_plain_rq_job_runs_its_success_and_failure_callbacks(redis_conn: Redis) -> None:
    queue = django_rq.get_queue("default")
    callbacks: dict[str, Any] = {
        "on_success": Callback(rq_funcs.on_success),
        "on_failure": Callback(rq_funcs.on_failure),
    }
    ok = queue.enqueue(rq_funcs.add, 2, 3, **callbacks)
    bad = queue.enqueue(rq_funcs.explode, "boom", **callbacks)
    assert run_worker("default", "--burst").returncode == 0
    assert rq_funcs.entries(redis_conn) == [
        "add:2+3",
        f"success:{ok.id}:5",
        "explode:boom",
        f"failure:{bad.id}:ValueError:boom",
    ]
    ok.refresh()
    assert ok.get_status() == JobStatus.FINISHED and ok.return_value() == 5
    assert Job.fetch(bad.id, connection=redis_conn, serializer=queue.serializer).get_status() == JobStatus.FAILED
    assert FailedJob.objects.get(job_id=bad.id).exception_class == "builtins.ValueError"


def test_a_success_callback_that_raises_fails_the_job_as_in_rq(redis_conn: Redis) -> None:
    queue = django_rq.get_queue("default")
    job = queue.enqueue(rq_funcs.add, 1, 1, on_success=Callback(rq_funcs.on_success_raises))
    assert run_worker("default", "--burst").returncode == 0
    assert rq_funcs.entries(redis_conn) == ["add:1+1"]  # it ran once; the callback's error failed it
    assert job.get_status() == JobStatus.FAILED
    failed = FailedJob.objects.get(job_id=job.id)
    assert failed.exception_class == "builtins.RuntimeError" and failed.message == "the success callback broke"


def test_a_failing_job_reaches_sentry_through_its_rq_integration(redis_conn: Redis, sentry: SentryIngest) -> None:
    plain = django_rq.get_queue("default").enqueue(rq_funcs.explode, "kaboom")
    jobs.always_fails.dispatch("boom")  # tries=2: the retried attempt is not reported, the last one is
    jobs.rejects.dispatch("bad")  # a permanent error is the last attempt, with 4 tries left
    jobs.record.dispatch("fine")
    env = {**worker_env(), "SENTRY_DSN": sentry.dsn, "SENTRY_ENVIRONMENT": "test"}
    done = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # The SDK sends from a background thread and flushes at exit.
    wait_for(lambda: len(sentry.events) >= 3, timeout=10)
    by_func = {event["extra"]["rq-job"]["func"]: event for event in sentry.events}
    assert len(sentry.events) == 3, [e["extra"]["rq-job"]["func"] for e in sentry.events]
    assert set(by_func) == {
        "tests.queueing.rq_funcs.explode",
        "tests.queueing.jobs.always_fails",
        "tests.queueing.jobs.rejects",
    }
    event = by_func["tests.queueing.rq_funcs.explode"]
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ValueError" and exception["value"] == "kaboom"
    assert exception["mechanism"] == {"type": "rq", "handled": False}
    assert event["extra"]["rq-job"]["job_id"] == plain.id
    assert event["extra"]["rq-job"]["args"] != ["kaboom"]  # customers' data stays home (send_default_pii off)
    assert event["environment"] == "test"
    assert by_func["tests.queueing.jobs.rejects"]["exception"]["values"][0]["type"] == "InvalidPayload"
    assert FailedJob.objects.count() == 3  # our ledger has them too


def test_a_dependent_runs_after_its_parent_and_then_its_callback(redis_conn: Redis) -> None:
    queue = django_rq.get_queue("default")
    parent = queue.enqueue(rq_funcs.add, 1, 2)
    child = queue.enqueue(rq_funcs.add, 3, 4, depends_on=parent, on_success=Callback(rq_funcs.on_success))
    assert child.get_status() == JobStatus.DEFERRED
    assert run_worker("default", "--burst").returncode == 0
    assert rq_funcs.entries(redis_conn) == ["add:1+2", "add:3+4", f"success:{child.id}:7"]
    assert child.get_status() == JobStatus.FINISHED
    assert queue.deferred_job_registry.count == 0


def test_dependents_of_a_failed_job_run_only_if_they_allow_the_failure(redis_conn: Redis) -> None:
    queue = django_rq.get_queue("default")
    parent = queue.enqueue(rq_funcs.explode, "first")
    tolerant = queue.enqueue(rq_funcs.add, 5, 5, depends_on=Dependency(jobs=[parent], allow_failure=True))
    strict = queue.enqueue(rq_funcs.add, 6, 6, depends_on=parent)
    assert run_worker("default", "--burst").returncode == 0
    assert rq_funcs.entries(redis_conn) == ["explode:first", "add:5+5"]
    assert tolerant.get_status() == JobStatus.FINISHED
    assert strict.get_status() == JobStatus.DEFERRED  # as in RQ: it waits for a parent that never finishes


def test_a_failure_leaves_a_failed_result_as_in_rq(redis_conn: Redis) -> None:
    queue = django_rq.get_queue("default")
    job = queue.enqueue(rq_funcs.explode, "why")
    assert run_worker("default", "--burst").returncode == 0
    result = job.latest_result()
    assert result is not None and result.type == Result.Type.FAILED
    assert result.exc_string is not None and "ValueError: why" in result.exc_string


def test_the_reaper_releases_dependents_a_dead_worker_left_deferred(redis_conn: Redis) -> None:
    """The worker wrote the parent's success and died before releasing its dependents."""
    queue = django_rq.get_queue("default")
    parent = queue.enqueue(rq_funcs.add, 1, 1)
    child = queue.enqueue(rq_funcs.add, 2, 2, depends_on=parent)
    queue.remove(parent)  # taken off the queue and run, as far as Redis can tell:
    parent.set_status(JobStatus.FINISHED)
    assert reaper.reap(redis_conn, [queue]) == 0  # no claim to settle; the sweep runs all the same
    assert queue.job_ids == [child.id]
    assert child.get_status() == JobStatus.QUEUED


ENQUEUE_UNDER_PREFIX = """
from datetime import timedelta
import django_rq
from django_rq.settings import get_queues_list
from rq import Callback
from rq.rate_limit import RateLimit
from rq.repeat import Repeat
from tests.queueing import jobs, rq_funcs
queue = django_rq.get_queue("default")
parent = queue.enqueue(rq_funcs.add, 1, 2)
queue.enqueue(rq_funcs.add, 3, 4, depends_on=parent, on_success=Callback(rq_funcs.on_success))
jobs.record.dispatch("ours")
jobs.record.dispatch_in(timedelta(seconds=1), "later")
jobs.always_fails.dispatch("boom")
"""


def test_rq_key_prefix_renames_every_key_and_loses_nothing(redis_conn: Redis) -> None:
    env = {**worker_env(), "RQ_KEY_PREFIX": "{rq}"}

    def manage(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr

    manage("shell", "-c", ENQUEUE_UNDER_PREFIX)
    assert redis_conn.llen("{rq}:queue:default") == 3 and not redis_conn.keys("rq:*")
    time.sleep(1.1)  # the delayed job is due: a burst worker promotes it, then runs it
    manage("rqworker", "default", "--burst")
    assert rq_funcs.entries(redis_conn)[:2] == ["add:1+2", "add:3+4"]  # the dependent ran, then its callback
    assert rq_funcs.entries(redis_conn)[2].startswith("success:")
    assert sorted(jobs.effects("effects")) == ["later", "ours"]  # the delayed one was promoted and ran
    assert jobs.effects("attempts") == ["boom", "boom"]  # retried, then failed into the ledger
    assert FailedJob.objects.get().job_name == "tests.queueing.jobs.always_fails"
    assert redis_conn.llen("{rq}:queue:default") == 0 and redis_conn.zcard("{rq}:wip:default") == 0
    assert not redis_conn.keys("rq:*"), redis_conn.keys("rq:*")  # nothing written under RQ's default prefix


def test_django_rq_stop_button_stops_the_running_job_and_the_worker_goes_on(
    redis_conn: Redis, admin_client: Any, workers: list[Any]
) -> None:
    queue = django_rq.get_queue("default")
    long = queue.enqueue(rq_funcs.nap, 60, on_stopped=Callback(rq_funcs.on_stopped))
    after = queue.enqueue(rq_funcs.add, 1, 2)
    workers.append(start_worker("default"))
    wait_for(lambda: long.get_status() == JobStatus.STARTED, timeout=30)
    wait_for(lambda: "nap:60" in rq_funcs.entries(redis_conn), timeout=10)
    queue_index = django_rq_index("default")
    started = time.monotonic()
    response = admin_client.post(f"/admin/django_rq/dashboard/queues/{queue_index}/{long.id}/stop/")
    assert response.status_code == 302
    wait_for(lambda: long.get_status() == JobStatus.STOPPED, timeout=15)
    assert time.monotonic() - started < 15  # not the job's 60 s
    wait_for(lambda: after.get_status() == JobStatus.FINISHED, timeout=15)  # the same worker goes on
    assert rq_funcs.entries(redis_conn) == ["nap:60", f"stopped:{long.id}", "add:1+2"]
    failed = FailedJob.objects.get(job_id=long.id)  # in the ledger, to retry or forget like any failure
    assert failed.exception_class == "queueing.worker.execution.JobStopped" and failed.attempts == 1
    result = long.latest_result()
    assert result is not None and result.type == Result.Type.FAILED
    assert workers[0].poll() is None


def test_django_rq_requeue_and_delete_keep_the_ledger_in_step(redis_conn: Redis, admin_client: Any) -> None:
    jobs.always_fails.dispatch("again")
    jobs.always_fails.dispatch("gone")
    assert run_worker("default", "--burst").returncode == 0
    again = FailedJob.objects.get(args=["again"])
    gone = FailedJob.objects.get(args=["gone"])
    base = f"/admin/django_rq/dashboard/queues/{django_rq_index('default')}/"
    # Requeue under the old id: the row leaves the ledger, the job runs again.
    assert admin_client.post(f"{base}{again.job_id}/requeue/").status_code == 302
    assert not FailedJob.objects.filter(pk=again.pk).exists()
    assert admin_client.post(f"{base}{gone.job_id}/delete/").status_code == 302
    assert not FailedJob.objects.filter(pk=gone.pk).exists()
    assert run_worker("default", "--burst").returncode == 0
    # It failed again: a new row, and the failure hook called again.
    row = FailedJob.objects.get()
    assert row.job_id == again.job_id and row.args == ["again"]
    assert sorted(jobs.effects("hooks")) == ["again:RuntimeError", "again:RuntimeError", "gone:RuntimeError"]
    # The bulk action and "requeue all" go the same way.
    response = admin_client.post(f"{base}actions/", {"action": "requeue", "job_ids": [row.job_id]})
    assert response.status_code == 302 and not FailedJob.objects.exists()
    assert run_worker("default", "--burst").returncode == 0
    assert FailedJob.objects.count() == 1
    assert admin_client.post(f"{base}requeue-all/").status_code == 302
    assert not FailedJob.objects.exists() and get_queue("default").count == 1


def test_repeat_rate_limit_and_a_returned_retry(redis_conn: Redis) -> None:
    queue = django_rq.get_queue("default")
    repeated = queue.enqueue(rq_funcs.add, 2, 2, repeat=Repeat(times=2))
    limit = RateLimit("one-at-a-time", concurrency=1)
    limited = [queue.enqueue(rq_funcs.add, n, 0, rate_limit=limit) for n in (10, 20, 30)]
    assert queue.count == 2  # the limit holds two back until the first one's slot is free
    retry = queue.enqueue(rq_funcs.asks_for_retry)
    assert run_worker("default", "--burst").returncode == 0
    entries = rq_funcs.entries(redis_conn)
    assert entries.count("add:2+2") == 3  # once and two repeats
    assert sorted(e for e in entries if e.endswith("+0")) == ["add:10+0", "add:20+0", "add:30+0"]  # each slot freed
    assert all(job.get_status() == JobStatus.FINISHED for job in [repeated, *limited])
    failed = FailedJob.objects.get(job_id=retry.id)  # refused, with the reason, not dropped
    assert failed.exception_class == "queueing.worker.execution.UnsupportedRQFeature"
    assert "returning rq.Retry" in failed.message
