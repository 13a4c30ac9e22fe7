"""Plain functions for RQ's own API (``queue.enqueue(f, ...)``), not ``@job`` definitions.

What they do is visible in Redis, so a test in another process can read it.
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis
from rq import get_current_job

LOG = "rqtest:log"


def _log(entry: str) -> None:
    job = get_current_job()
    assert job is not None
    job.connection.rpush(LOG, entry)


def add(a: int, b: int) -> int:
    _log(f"add:{a}+{b}")
    return a + b


def explode(message: str) -> None:
    _log(f"explode:{message}")
    raise ValueError(message)


def on_success(job: Any, connection: Redis, result: Any, *args: Any, **kwargs: Any) -> None:
    connection.rpush(LOG, f"success:{job.id}:{result}")


def on_failure(job: Any, connection: Redis, exc_type: type, exc: BaseException, tb: Any) -> None:
    connection.rpush(LOG, f"failure:{job.id}:{exc_type.__name__}:{exc}")


def on_success_raises(job: Any, connection: Redis, result: Any, *args: Any, **kwargs: Any) -> None:
    raise RuntimeError("the success callback broke")


def entries(connection: Redis) -> list[str]:
    return [e.decode() if isinstance(e, bytes) else e for e in connection.lrange(LOG, 0, -1)]


def nap(seconds: float) -> str:
    _log(f"nap:{seconds}")
    time.sleep(seconds)
    return "woke"


def on_stopped(job: Any, connection: Redis) -> None:
    connection.rpush(LOG, f"stopped:{job.id}")


def asks_for_retry() -> Any:
    from rq import Retry

    _log("asks_for_retry")
    return Retry(max=2)


def noop() -> None:
    _log("noop")
