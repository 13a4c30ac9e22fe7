"""How VitoWorker runs a job that is a Django task (``WorkerJob._execute``).

RQ would call the job's function; a task's module path imports a ``Task``
object, which is not callable. Here it is called as Django's framework calls
it: ``Task.call`` (a coroutine function runs to completion), with a
``TaskContext`` first when the task ``takes_context``, between the
``task_started`` and ``task_finished`` signals. ``task_finished`` is sent once
the task is finished: after a success, or after the failure of its last
attempt (a permanent one included). The return value must be JSON, as the
framework requires: otherwise the task fails saying so.
"""

from __future__ import annotations

import json
import traceback
from typing import Any

from rq.job import Job

from queueing.task_backend import results
from queueing.task_backend.compat import (
    TASK_CLASSES,
    TaskContext,
    TaskError,
    TaskResultStatus,
    task_backends,
    task_finished,
    task_started,
)


def is_task(func: Any) -> bool:
    return isinstance(func, TASK_CLASSES)


def run(job: Job, task: Any) -> Any:
    backend = task_backends[job.meta.get("task_backend") or task.backend]
    result = results.running(backend, job, task)
    sender = type(backend)
    task_started.send(sender, task_result=result)
    try:
        if task.takes_context:
            value = task.call(TaskContext(task_result=result), *job.args, **job.kwargs)
        else:
            value = task.call(*job.args, **job.kwargs)
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"task {task.module_path} returned a value that is not JSON: {exc}") from None
    except BaseException as exc:
        if not job.should_retry or isinstance(exc, KeyboardInterrupt | SystemExit):
            error = TaskError(
                exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
                traceback="".join(traceback.format_exception(exc)),
            )
            result.errors.append(error)
            object.__setattr__(result, "status", TaskResultStatus.FAILED)
            task_finished.send(sender, task_result=result)
        raise
    object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "_return_value", value)
    task_finished.send(sender, task_result=result)
    return value
