"""The outbox relay killed at its worst moment, two relays, two schedulers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import django_rq
import pytest
from django.conf import settings

from chaos import effects
from chaos.cluster import Cluster, wait_for
from chaos.schedule import ENTRIES
from outbox.models import OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.fast
def test_relay_killed_between_enqueue_and_marking_then_two_relays(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    ids = effects.products(200)
    for pid in ids:
        effects.publish_tally(pid)
    # The fault SIGKILLs the relay right after it enqueued a batch and before
    # it marked the rows: the worst moment for "exactly once" (chaos/faults.py).
    crashed = cluster.run("outbox_process", fault="crash-after-enqueue")
    assert crashed.returncode == -signal.SIGKILL
    assert django_rq.get_queue("default").count > 0
    assert OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).count() == 200
    started = time.monotonic()
    # Two relays race for the same rows (SKIP LOCKED) while the first copies run.
    cluster.relay()
    cluster.relay()
    cluster.worker("default")
    cluster.worker("high", "default")
    done = OutboxMessage.Status.PROCESSED
    wait_for(lambda: effects.done(ids) and OutboxMessage.objects.exclude(status=done).count() == 0, timeout=90)
    lost, twice = effects.tally(ids)
    record("relay SIGKILLed between enqueue and marking, then two relays", load="200 outbox messages",
           fault="SIGKILL after enqueue; 2 relays at once", lost=lost, duplicated=twice,
           recovered=time.monotonic() - started)  # fmt: skip
    assert (lost, twice) == (0, 0)


@pytest.mark.fast
def test_two_schedulers_for_ten_simulated_minutes(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    start = 1_800_000_000.0  # a fixed instant: 2027-01-15 08:00:00 UTC, on a 5-minute boundary
    seconds = 600
    expected = sum(len(entry.ticks(start, start + seconds)) for entry in ENTRIES)
    assert expected == 60 + 10 + 2
    # Different steps, so the two passes overlap in every possible way.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "chaos.sim_scheduler", str(start), str(seconds), step, seed],
            env=cluster.env(), cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True,
        )
        for step, seed in (("1", "1"), ("7", "2"))
    ]  # fmt: skip
    fired = [int(proc.communicate(timeout=120)[0].split()[-1]) for proc in procs]
    queue = django_rq.get_queue("default")
    by_entry: dict[str, int] = {}
    for job in queue.get_jobs():
        by_entry[job.args[0]] = by_entry.get(job.args[0], 0) + 1
    enqueued = sum(by_entry.values())
    record("two schedulers at once", load=f"10 simulated minutes, {expected} ticks",
           fault="2 schedulers, steps 1 s and 7 s", lost=max(0, expected - enqueued),
           duplicated=max(0, enqueued - expected))  # fmt: skip
    assert sum(fired) == expected, fired
    assert by_entry == {"every-10s": 60, "every-minute": 10, "every-5-minutes": 2}
