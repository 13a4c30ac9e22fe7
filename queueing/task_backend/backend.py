"""``VitoTaskBackend``: Django's task framework on our queues and workers.

    TASKS = {"default": {"BACKEND": "queueing.task_backend.VitoTaskBackend",
                         "OPTIONS": {"tries": 3, "backoff": [10, 60], "timeout": 300,
                                     "tasks": {"shop.tasks.send_receipt": {"tries": 5}}}}}

``@task(...).enqueue()`` becomes an RQ job named after the task's module
path on the task's queue (a logical name routed by the queue layout, like
``@job``'s), run by VitoWorker with its ledger, metrics and dashboard.
Inside ``transaction.atomic()`` the job is pushed when the transaction
commits, and never if it rolls back; the ``TaskResult`` returned at once
carries the id ``get_result()`` reads later. Tries, backoff and timeout come
from the backend's OPTIONS (per task under ``tasks``), else from the queue
layout, else from the worker's flags. docs/rq-contract.md, "django.tasks".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from django.core import checks
from django.db import transaction
from rq import Retry
from rq.job import Job

from queueing.definitions import Backoff, backoff_delays
from queueing.dispatch import FAILURE_TTL, get_queue
from queueing.task_backend import results
from queueing.task_backend.compat import BaseTaskBackend, Task, TaskResult, TaskResultStatus, task_enqueued
from queueing.topology import default_tries, physical_queue, routes

OPTION_KEYS = {"tries", "backoff", "timeout"}


class VitoTaskBackend(BaseTaskBackend):
    supports_defer = True  # run_after: RQ's scheduled registry, promoted by the workers
    supports_async_task = True  # Task.call runs a coroutine function to completion
    supports_get_result = True
    supports_priority = False  # strict queue order; a queue of its own is the way to go first

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        if "QUEUES" not in params:
            self.queues = set(routes())  # every logical and physical queue of the layout

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        result: TaskResult[Any] = TaskResult(
            task=task,
            id=uuid.uuid4().hex,
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        queue = get_queue(physical_queue(task.queue_name))
        job = queue.create_job(
            task.module_path,
            args=result.args,  # normalized to JSON values by TaskResult
            kwargs=result.kwargs,
            job_id=result.id,
            failure_ttl=FAILURE_TTL,
            **self._job_options(task, queue.name),
        )
        transaction.on_commit(partial(self._push, queue, job, task, result))
        return result

    def _push(self, queue: Any, job: Job, task: Task[Any, Any], result: TaskResult[Any]) -> None:
        if task.run_after is None:
            queue.enqueue_job(job)
        else:
            queue.schedule_job(job, task.run_after)
        object.__setattr__(result, "enqueued_at", job.enqueued_at)
        task_enqueued.send(type(self), task_result=result)

    def _job_options(self, task: Task[Any, Any], physical: str) -> dict[str, Any]:
        options = self.task_options(task.module_path)
        tries = options.get("tries") or default_tries(physical)
        retries = (tries or 1) - 1
        backoff: Backoff = options.get("backoff")
        meta: dict[str, Any] = {"task_backend": self.alias, "task_queue": task.queue_name}
        if tries:
            meta["tries"] = tries
        return {
            "timeout": options.get("timeout"),
            "retry": Retry(max=retries, interval=backoff_delays(backoff, retries)) if retries else None,
            "meta": meta,
        }

    def task_options(self, module_path: str) -> dict[str, Any]:
        """The backend's tries/backoff/timeout, with the task's own (OPTIONS["tasks"]) on top."""
        options = {key: value for key, value in self.options.items() if key in OPTION_KEYS}
        per_task: Mapping[str, Mapping[str, Any]] = self.options.get("tasks", {})
        options.update(per_task.get(module_path, {}))
        return options

    def get_result(self, result_id: str) -> TaskResult[Any]:
        return results.read(self, result_id)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        yield from super().check(**kwargs)
        unknown = set(self.options) - OPTION_KEYS - {"tasks"}
        if unknown:
            yield checks.Error(
                f"TASKS[{self.alias!r}]['OPTIONS'] has unknown key(s) {sorted(unknown)}",
                hint=f"Use {sorted(OPTION_KEYS | {'tasks'})}.",
                id="queueing.E010",
            )
        for path, options in self.options.get("tasks", {}).items():
            bad = set(options) - OPTION_KEYS
            if bad:
                yield checks.Error(
                    f"TASKS[{self.alias!r}]['OPTIONS']['tasks'][{path!r}] has unknown key(s) {sorted(bad)}",
                    hint=f"Use {sorted(OPTION_KEYS)}.",
                    id="queueing.E010",
                )
        for name in sorted(self.queues - set(routes())):
            yield checks.Error(
                f"TASKS[{self.alias!r}] names queue {name!r}, which the queue layout does not route",
                hint="Add it to the layout's [routes] or remove it from QUEUES.",
                id="queueing.E011",
            )
