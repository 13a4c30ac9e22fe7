"""Django tasks (``@task``) for the task-backend tests; what they do is visible in Redis.

The signal receivers are connected here, so the worker process that imports
this module to run a task records its task_started / task_finished too.
"""

from __future__ import annotations

from typing import Any

import django_rq

from queueing.task_backend.compat import TaskContext, task, task_finished, task_started

LOG = "tasktest:log"


def _log(entry: str) -> None:
    django_rq.get_connection("default").rpush(LOG, entry)


def entries() -> list[str]:
    raw = django_rq.get_connection("default").lrange(LOG, 0, -1)
    return [e.decode() if isinstance(e, bytes) else str(e) for e in raw]


def _on_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _log(f"started:{task_result.task.name}:{task_result.status}")


def _on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _log(f"finished:{task_result.task.name}:{task_result.status}")


task_started.connect(_on_started, dispatch_uid="tests.queueing.tasks.started")
task_finished.connect(_on_finished, dispatch_uid="tests.queueing.tasks.finished")


@task()
def add(a: int, b: int) -> int:
    _log(f"add:{a}+{b}")
    return a + b


@task(takes_context=True)
def with_context(context: TaskContext, tag: str) -> str:
    _log(f"{tag}:attempt={context.attempt}:id={context.task_result.id}")
    if context.attempt < 2:
        raise ConnectionError("first attempt fails")
    return tag


@task()
def fails(tag: str) -> None:
    _log(f"fails:{tag}")
    raise ValueError(f"{tag} failed")


@task()
async def async_add(a: int, b: int) -> int:
    _log(f"async_add:{a}+{b}")
    return a + b


@task()
def returns_a_set() -> Any:
    return {1, 2}


@task(queue_name="webhooks")
def on_a_logical_queue() -> str:
    return "routed"
