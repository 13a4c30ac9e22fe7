"""Middleware under real concurrency: two worker processes at once."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest
from redis import Redis

from queueing.models import FailedJob
from tests.queueing import jobs
from tests.queueing.conftest import start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_without_overlapping_runs_one_at_a_time_and_releases_the_rest(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    for tag in ("a", "b", "c"):
        jobs.exclusive.dispatch(tag, 0.8)
    workers.extend(start_worker("default", "--sleep", "1") for _ in range(2))
    wait_for(lambda: len(jobs.effects("spans")) == 6, timeout=60)
    spans: dict[str, dict[str, float]] = {}
    for entry in jobs.effects("spans"):
        kind, tag, stamp = entry.split(":")
        spans.setdefault(tag, {})[kind] = float(stamp)
    ordered = sorted(spans.values(), key=lambda s: s["start"])
    for earlier, later in pairwise(ordered):
        assert later["start"] >= earlier["end"], "two exclusive jobs overlapped"
    # Released jobs were not failed and did not use up their attempts (tries=2).
    assert not FailedJob.objects.exists()


def test_rate_limited_jobs_wait_for_the_next_window_without_using_attempts(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    for n in range(9):
        jobs.limited.dispatch("tenant-a", n)
    jobs.limited.dispatch("tenant-b", 0)  # another key has its own budget
    workers.extend(start_worker("default", "--sleep", "1") for _ in range(2))
    wait_for(lambda: len(jobs.effects("limited")) == 10, timeout=60)
    admitted = [
        (float(before), float(after))
        for tenant, before, after in (e.split(":") for e in jobs.effects("admitted"))
        if tenant == "tenant-a"
    ]
    assert len(admitted) == 9
    # The window each was counted in, where the readings around the check agree on it.
    per_second = Counter(int(before) for before, after in admitted if int(before) == int(after))
    assert max(per_second.values()) <= 3
    assert not FailedJob.objects.exists()  # tries=1, yet nothing failed: releases are not attempts


def test_throttles_exceptions_stops_calling_a_failing_provider(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    jobs.calls_flaky_provider.dispatch("p")
    workers.append(start_worker("default", "--sleep", "1"))
    wait_for(lambda: len(jobs.effects("provider")) >= 3, timeout=60)
    stamps = [float(e.split(":")[1]) for e in jobs.effects("provider")]
    # Two failures trip the breaker; the third call waits out the 3 s decay.
    assert stamps[2] - stamps[1] >= 2.0
    assert stamps[1] - stamps[0] < 2.0
