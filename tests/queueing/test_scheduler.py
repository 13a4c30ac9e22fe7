from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.conf import settings
from redis import Redis

from queueing.dispatch import get_queue
from queueing.scheduler import Entry, run_pending
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, worker_env


def test_entries_compute_their_ticks() -> None:
    every = Entry("e", "x.y", every=60)
    assert every.ticks(0, 180) == [60, 120, 180]
    cron = Entry("c", "x.y", cron="*/15 * * * *")
    start = datetime(2026, 1, 1, 10, 7, tzinfo=UTC).timestamp()
    hour = [datetime.fromtimestamp(t, UTC).minute for t in cron.ticks(start, start + 3600)]
    assert hour == [15, 30, 45, 0]
    with pytest.raises(ValueError, match="exactly one of"):
        Entry("bad", "x.y")
    with pytest.raises(ValueError, match="invalid cron"):
        Entry("bad", "x.y", cron="every tuesday")


def test_each_tick_is_dispatched_once_however_many_schedulers(redis_conn: Redis) -> None:
    entries = [Entry("rec", "tests.queueing.jobs.record", every=60, args=("tick",))]
    # Ten minutes of simulated time, passed through by two schedulers in turns
    # and overlapping windows.
    fired = []
    for minute in range(10):
        base = 1_800_000_000 + minute * 60
        fired += run_pending(redis_conn, entries, base - 90, base + 1)
        fired += run_pending(redis_conn, entries, base - 30, base + 2)
    # Every minute boundary in the span once: 10 minutes plus the one before the first window.
    assert len(fired) == len(set(fired)) == 11
    assert get_queue("default").count == 11


def _scheduler(max_time: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "schedule_work", "--schedule", "tests.queueing.schedule.SCHEDULE",
         "--max-time", str(max_time)],
        env=worker_env(), cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def test_two_scheduler_processes_never_enqueue_a_tick_twice(redis_conn: Redis) -> None:
    procs = [_scheduler(4), _scheduler(4)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    run_worker("default", "--burst")
    ticks = jobs.effects("effects")
    assert 3 <= len(ticks) <= 5  # one per second for ~4 s, not two
    claimed = [str(k) for k in redis_conn.keys("vito:schedule:every-second:*")]
    assert len(claimed) == len(ticks)
    assert Counter(claimed).most_common(1)[0][1] == 1


@pytest.mark.django_db(transaction=True)
def test_heartbeat_and_smoke_test_run_on_every_queue(redis_conn: Redis) -> None:
    from queueing import keys
    from queueing.jobs import heartbeat, smoke_test

    heartbeat.on_queue("high").dispatch("high")
    heartbeat.on_queue("default").dispatch("default")
    smoke_test.dispatch()
    run_worker("high", "default", "--burst")
    assert set(redis_conn.hgetall(keys.HEARTBEAT)) == {b"default", b"high"}
    smoke_test.dispatch()
    run_worker("high", "default", "--burst")
    report = smoke_test.func()  # the third run reports on the second's probes
    assert report == {"default": "ok", "high": "ok"}


def test_schedule_list_shows_the_table() -> None:
    out = subprocess.run(
        [sys.executable, "manage.py", "schedule_work", "--list"],
        env=worker_env(), cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "queue-heartbeat-default" in out and "queue-smoke-test" in out and "cron */5 * * * *" in out
