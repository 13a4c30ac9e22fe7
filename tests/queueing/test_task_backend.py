"""Django's task framework (``@task``) on our queues and real workers (queueing/task_backend/)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from redis import Redis

from queueing.dispatch import get_queue
from queueing.models import FailedJob
from queueing.task_backend.compat import FRAMEWORK, TaskResultDoesNotExist, TaskResultStatus, task_backends
from tests.queueing import tasks
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _run(*flags: str) -> None:
    done = run_worker("default", "high", "--burst", *flags)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_task_enqueued_in_a_transaction_runs_once_after_commit(redis_conn: Redis) -> None:
    with transaction.atomic():
        result = tasks.add.enqueue(2, 3)
        assert result.status == TaskResultStatus.READY
        assert get_queue("default").count == 0  # not before the commit
    assert get_queue("default").job_ids == [result.id]
    assert tasks.add.get_result(result.id).status == TaskResultStatus.READY
    _run()
    done = tasks.add.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL and done.return_value == 5
    assert done.finished_at is not None and done.attempts == 1 and not done.errors
    assert tasks.entries() == [
        "started:add:RUNNING",
        "add:2+3",
        "finished:add:SUCCESSFUL",
    ]


def test_a_rolled_back_transaction_enqueues_nothing(redis_conn: Redis) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        result = tasks.add.enqueue(1, 1)
        raise RuntimeError("roll back")
    assert get_queue("default").count == 0
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result(result.id)


def test_a_failed_task_reads_failed_with_its_error(redis_conn: Redis, settings: Any) -> None:
    settings.TASKS = {
        "default": {
            "BACKEND": "queueing.task_backend.VitoTaskBackend",
            "OPTIONS": {"tasks": {tasks.fails.module_path: {"tries": 2}}},
        }
    }
    result = tasks.fails.enqueue("boom")
    _run()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    (error,) = result.errors
    assert error.exception_class is ValueError and "boom failed" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    assert result.attempts == 2
    # Two attempts (our retries), one task_finished; and the ledger has it, to retry from the dashboard.
    assert tasks.entries() == [
        "started:fails:RUNNING",
        "fails:boom",
        "started:fails:RUNNING",
        "fails:boom",
        "finished:fails:FAILED",
    ]
    assert FailedJob.objects.get(job_id=result.id).job_name == tasks.fails.module_path


def test_context_attempts_run_after_async_and_routing(redis_conn: Redis) -> None:
    backend = task_backends["default"]
    assert backend.supports_defer and backend.supports_get_result and backend.supports_async_task
    retried = tasks.with_context.using().enqueue("ctx")  # fails on its first attempt: the worker's --tries
    later = tasks.add.using(run_after=timezone.now() + timedelta(seconds=1)).enqueue(4, 4)
    asynchronous = tasks.async_add.enqueue(5, 5)
    routed = tasks.on_a_logical_queue.enqueue()
    assert tasks.add.get_result(later.id).status == TaskResultStatus.READY
    assert get_queue("high").job_ids == [routed.id]  # `webhooks` routes to `high` in the vito layout
    time.sleep(1.1)
    _run("--tries", "2")
    for result in (retried, later, asynchronous, routed):
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result
    assert retried.return_value == "ctx" and later.return_value == 8
    assert asynchronous.return_value == 10  # type: ignore[comparison-overlap]  # the stub types it a coroutine
    assert routed.return_value == "routed" and routed.task.queue_name == "webhooks"
    log = tasks.entries()
    assert f"ctx:attempt=1:id={retried.id}" in log and f"ctx:attempt=2:id={retried.id}" in log
    assert "async_add:5+5" in log


def test_a_task_returning_something_not_json_fails_saying_so(redis_conn: Redis) -> None:
    result = tasks.returns_a_set.enqueue()
    _run()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert "not JSON" in result.errors[0].traceback


def test_the_framework_in_use_is_reported() -> None:
    import django

    assert ("django.tasks" if django.VERSION >= (6, 0) else "django_tasks") == FRAMEWORK
