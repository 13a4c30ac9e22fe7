"""Jobs that hurt their worker: one that always crashes it, one that bloats it.

Both run under the real ``queue_supervise`` master, which replaces children
that die or recycle themselves.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection

from chaos import effects, jobs
from chaos.cluster import Cluster, Proc, wait_for
from queueing.models import FailedJob

pytestmark = pytest.mark.django_db(transaction=True)


def _master(cluster: Cluster, **supervisor: object) -> Proc:
    config = {"name": "chaos", "queues": ["default"], "balance": "off", "processes": 2, "sleep": 1, **supervisor}
    return cluster.manage("master", "queue_supervise", env=cluster.env(QUEUE_SUPERVISORS_JSON=json.dumps([config])))


def _p95(values: list[float]) -> float:
    return values[max(0, int(len(values) * 0.95) - 1)] if values else 0.0


def _steady(phase: str, seconds: float, rate: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not stop.is_set():
            jobs.stamp.dispatch(phase, time.time())
            time.sleep(1 / rate)
    finally:
        connection.close()


def test_poison_job_stops_after_its_tries_and_others_keep_flowing(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    [pid] = effects.products(1)
    _master(cluster)
    wait_for(lambda: jobs.stamp.dispatch("warmup", time.time()) and jobs.waits("warmup"), timeout=60, step=1)
    stop = threading.Event()
    _steady("before", 20, 5, stop)  # baseline: two healthy workers
    started = time.monotonic()
    jobs.poison.dispatch(pid)
    producer = threading.Thread(target=_steady, args=("during", 240, 5, stop))
    producer.start()
    try:
        # Each attempt kills its worker; the claim expires, the reaper counts
        # the attempt; after the last one the job is in the ledger.
        failed = wait_for(lambda: FailedJob.objects.filter(job_name="chaos.jobs.poison").first(), timeout=240, step=1)
    finally:
        stop.set()
        producer.join(timeout=30)
    took = time.monotonic() - started
    time.sleep(2)  # let the last stamps run
    before, during = _p95(jobs.waits("before")), _p95(jobs.waits("during"))
    record(
        "poison job (kills its worker every try)",
        load="5 jobs/s beside it, 2 workers under queue_supervise",
        fault="os.kill(self, SIGKILL) on each of 2 tries",
        lost=0,
        duplicated=max(0, jobs.executions(pid) - 2),
        recovered=f"ledger after {took:.0f} s; p95 wait {before * 1000:.0f} → {during * 1000:.0f} ms",
    )
    assert failed.exception_class == "rq.exceptions.AbandonedJobError"
    assert jobs.executions(pid) == 2
    # "Does not double", with a floor: below 50 ms the figure is scheduler noise.
    assert during <= max(2 * before, 0.05), (before, during)


@pytest.mark.fast
def test_worker_over_its_memory_limit_is_recycled_after_its_job(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    ids = effects.products(21)
    master = _master(cluster, processes=1, memory=150)
    started = time.monotonic()
    jobs.hog.dispatch(ids[0], 200)
    for pid in ids[1:]:
        jobs.slow_effect.dispatch(pid, 0.05)
    wait_for(lambda: effects.done(ids), timeout=90)
    took = time.monotonic() - started
    lost, twice = effects.tally(ids)
    log = master.output()
    recycled = "--memory 150 MB reached" in "".join(p.output() for p in cluster.procs)
    record("worker over its memory limit", load="1 job leaking 200 MB + 20 jobs", fault="--memory 150",
           lost=lost, duplicated=twice, recovered=took)  # fmt: skip
    assert (lost, twice) == (0, 0)
    assert recycled, log[-3000:]
    assert jobs.executions(ids[0]) == 1  # finished, then recycled: not killed mid-job
