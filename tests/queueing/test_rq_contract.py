"""What code written for RQ gets on our workers: plain ``queue.enqueue`` jobs,
their callbacks, and Sentry's RQ integration (docs/rq-contract.md)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import django_rq
import pytest
from django.conf import settings
from redis import Redis
from rq import Callback
from rq.job import Job, JobStatus

from queueing.models import FailedJob
from tests.queueing import jobs, rq_funcs
from tests.queueing.conftest import run_worker, wait_for, worker_env
from tests.sentry_ingest import SentryIngest

pytestmark = pytest.mark.django_db(transaction=True)


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
