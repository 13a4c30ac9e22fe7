"""Dramatiq's side of the worker-throughput comparison: the same no-op job as a
Dramatiq actor, on a RedisBroker over the benchmark's Redis (REDIS_URL).

Run by ``python -m dramatiq bench.dramatiq_jobs``; Dramatiq's default
middleware (age and time limits, retries, callbacks, pipelines) stays on, as
ours does.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["REDIS_URL"])  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default", max_retries=0)
def noop(i: int) -> None:
    """Nothing, like bench.jobs.noop."""
