"""The benchmark's job: a no-op, declared like any job in the catalog."""

from __future__ import annotations

from queueing.definitions import job


@job(queue="default")
def noop(n: int) -> None:
    return None


@job(queue="default", unique_for=300)
def unique_noop(n: int) -> None:
    return None
