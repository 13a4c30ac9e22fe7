"""Workers SIGKILLed mid-job, over and over, while work keeps arriving."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import django_rq
import pytest
from django.db import connection

from chaos import effects
from chaos.cluster import Cluster, Proc, wait_for
from outbox.models import OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True)

KILLS = 20
MESSAGES = 300
RATE = 6.0  # messages per second: under half of what two workers can do
JOB_SECONDS = 0.2  # long enough that a kill usually lands mid-job


def _victim_product(name: str) -> int | None:
    """The product whose message the worker ``name`` is delivering right now."""
    conn = django_rq.get_connection("default")
    job_id = conn.hget(f"rq:worker:{name}", "current_job")
    if not job_id:
        return None
    job = django_rq.get_queue("default").fetch_job(job_id.decode() if isinstance(job_id, bytes) else job_id)
    if job is None:
        return None
    message_id = job.args[0]  # outbox.jobs.deliver(message_id, handler, attempt)
    payload = OutboxMessage.objects.filter(pk=message_id).values_list("payload", flat=True).first()
    return None if payload is None else int(payload["product_id"])


def _kill_repeatedly(workers: dict[str, Proc], start: Callable[[], None]) -> list[tuple[int, float]]:
    """SIGKILL a busy worker every second or so, KILLS times; returns (product in hand, when)."""
    killed: list[tuple[int, float]] = []
    rng = random.Random(8)  # noqa: S311 - reproducible choices, not cryptography
    deadline = time.monotonic() + 180
    while len(killed) < KILLS and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.8, 1.6))
        busy = [(name, pid) for name in workers if (pid := _victim_product(name)) is not None]
        if not busy:
            continue
        name, pid = rng.choice(busy)
        workers.pop(name).kill()
        killed.append((pid, time.monotonic()))
        start()  # what supervisord or queue_supervise does
    return killed


def test_workers_sigkilled_20_times_under_steady_load(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    ids = effects.products(MESSAGES)
    cluster.relay()
    workers: dict[str, Proc] = {}
    serial = iter(range(1000))

    def start() -> None:
        name = f"chaos-{next(serial)}"
        workers[name] = cluster.worker("default", args=("--name", name))

    start()
    start()

    stop = threading.Event()

    def produce() -> None:
        try:
            for pid in ids:  # a steady stream, not one burst
                if stop.is_set():
                    return
                effects.publish_tally(pid, sleep=JOB_SECONDS)
                time.sleep(1 / RATE)
        finally:
            connection.close()

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        killed = _kill_repeatedly(workers, start)
    except BaseException:
        stop.set()  # only on failure: otherwise every message is published
        raise
    finally:
        producer.join(timeout=120)

    # Each killed job's claim expires (60 s without a heartbeat), the reaper
    # retries it; the inbox makes sure a retry after a commit does nothing.
    recovered: dict[int, float] = {}

    def all_recovered() -> bool:
        for pid, at in killed:
            if pid not in recovered and effects.done([pid]):
                recovered[pid] = time.monotonic() - at
        return len(recovered) == len({pid for pid, _ in killed}) and effects.done(ids)

    try:
        wait_for(all_recovered, timeout=240, step=0.5)
    except AssertionError:
        raise AssertionError(f"killed: {killed}\nrecovered: {recovered}\n{effects.describe_missing(ids)}") from None
    lost, twice = effects.tally(ids)
    times = sorted(recovered.values())
    slowest = times[-1] if times else 0.0
    record(
        "worker SIGKILLed mid-job",
        load=f"{MESSAGES} outbox jobs of {JOB_SECONDS:g} s at {RATE:g}/s, 2 workers",
        fault=f"SIGKILL ×{len(killed)}",
        lost=lost,
        duplicated=twice,
        recovered=f"median {times[len(times) // 2]:.0f} s, max {slowest:.0f} s" if times else "–",
    )
    assert len(killed) == KILLS
    assert (lost, twice) == (0, 0)
    assert slowest < 120
    wait_for(lambda: not OutboxMessage.objects.exclude(status=OutboxMessage.Status.PROCESSED).exists(), timeout=60)
