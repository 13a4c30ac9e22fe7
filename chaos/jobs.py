"""Jobs for the chaos scenarios; they run in real worker subprocesses.

Effects land in PostgreSQL (a product's stock, moved 0 → 1 by a conditional
UPDATE, the idempotent-effect pattern every real job uses); executions are
counted in Redis so a scenario can tell "ran twice" from "took effect twice".
"""

from __future__ import annotations

import os
import time

import django_rq
from redis import Redis

from orders.models import Product
from queueing.definitions import job


def _redis() -> Redis:
    return django_rq.get_connection("default")


def executions(product_id: int) -> int:
    return int(_redis().get(f"chaos:runs:{product_id}") or 0)


def _effect(product_id: int) -> None:
    # 0 → 1 only: a second run of the same job finds 1 and changes nothing.
    Product.objects.filter(pk=product_id, stock_quantity=0).update(stock_quantity=1)


@job(tries=3)
def slow_effect(product_id: int, seconds: float) -> None:
    _redis().incr(f"chaos:runs:{product_id}")
    time.sleep(seconds)
    _effect(product_id)


@job(queue="default", tries=2)
def poison(product_id: int) -> None:
    """Kills its own worker, every time (a segfaulting C extension, an OOM kill)."""
    _redis().incr(f"chaos:runs:{product_id}")
    os.kill(os.getpid(), 9)


@job(tries=3)
def hog(product_id: int, megabytes: int) -> None:
    """Allocates and keeps ``megabytes`` (a leak), then takes effect."""
    _redis().incr(f"chaos:runs:{product_id}")
    _leak.append(bytearray(megabytes * 1024 * 1024))
    _effect(product_id)


_leak: list[bytearray] = []


@job(queue="default")
def tick(entry: str) -> None:
    """Enqueued by the simulated schedulers; never run (the scenario counts the queue)."""


@job(queue="default")
def stamp(phase: str, enqueued_at: float) -> None:
    """Records how long it waited in the queue, for p95 comparisons."""
    _redis().rpush(f"chaos:waits:{phase}", time.time() - enqueued_at)


def waits(phase: str) -> list[float]:
    return sorted(float(v) for v in _redis().lrange(f"chaos:waits:{phase}", 0, -1))
