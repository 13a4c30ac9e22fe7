"""Outbox relay throughput and commit-to-enqueue latency.

Rows/s through ``outbox_relay_pass`` at claim sizes 1, 100, 500, 2000, with
one relay and two in parallel (forked processes), twice: one job per message
(``per_job=1``, the relay before batches) and several messages per job (the
default, ``OUTBOX_MESSAGES_PER_JOB``; a full claim is a backlog, so every
pass but the last is batched), with the ratio of the two; in the same
run the raw ceilings on the same table: a bare psycopg loop doing the same
claim → RQ ``enqueue_many`` → UPDATE → COMMIT, and a bare loop that only
RPUSHes ids. Then messages/s delivered end to end (relay, then one burst
worker: ``BENCH_OUTBOX_DELIVER`` messages, default 5000), one per job against
batches, and the latency from the publishing COMMIT to the job being on the
queue, with ``outbox_process --loop`` running (p50/p99 over BENCH_LATENCY
samples). BENCH_OUTBOX (default 20000) sets the message count (a tenth at
claim size 1).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from bench.harness import table

EVENT = "bench.event"


def _reset(n: int) -> None:
    import django_rq
    from django.db import connection

    django_rq.get_connection("default").flushdb()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE outbox_outboxmessage, outbox_inboxentry")
        cur.execute(
            "INSERT INTO outbox_outboxmessage (event_type, aggregate_type, aggregate_id, payload, headers, created_at,"
            " available_at, status, attempts, last_error, job_id)"
            " SELECT %s, 'bench', g::text, jsonb_build_object('n', g), '{}', now(), now(), 'pending', 0, '', ''"
            " FROM generate_series(1, %s) g",
            [EVENT, n],
        )
        cur.execute("ANALYZE outbox_outboxmessage")


def _parallel(worker: Callable[[int], None], batch: int, relays: int) -> float:
    from django.db import connections

    connections.close_all()  # never fork with an open connection
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=worker, args=(batch,)) for _ in range(relays)]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"relay process exited {proc.exitcode}")
    return time.perf_counter() - started


def _ours(batch: int, per_job: int = 1) -> None:
    from django.db import connections

    from outbox.services import outbox_relay_drain

    outbox_relay_drain(batch_size=batch, per_job=per_job)
    connections.close_all()


def _ours_batched(batch: int) -> None:
    from django.conf import settings

    _ours(batch, per_job=settings.OUTBOX_MESSAGES_PER_JOB)


def _burst_worker() -> float:
    """Seconds one ``rqworker default --burst`` takes, start to exit."""
    started = time.perf_counter()
    worker = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"], capture_output=True, text=True, timeout=900
    )
    if worker.returncode != 0:
        raise RuntimeError(f"the burst worker exited {worker.returncode}: {worker.stderr[-2000:]}")
    return time.perf_counter() - started


def _delivered(n: int, per_job: int, boot: float) -> tuple[float, float, int]:
    """(relay seconds, worker seconds less its start ``boot``, jobs) to move
    ``n`` messages and deliver them all with one burst worker on ``default``."""
    from outbox.models import OutboxMessage
    from outbox.services import outbox_relay_drain
    from queueing.dispatch import get_queue

    _reset(n)
    started = time.perf_counter()
    outbox_relay_drain(batch_size=500, per_job=per_job)
    relayed = time.perf_counter() - started
    jobs = get_queue("default").count
    working = max(0.001, _burst_worker() - boot)
    left = OutboxMessage.objects.exclude(status="processed").count()
    assert left == 0, f"{left} messages not processed (per_job={per_job})"
    return relayed, working, jobs


def _bare(batch: int, rpush_only: bool = False, per_job: int = 1) -> None:
    """The ceiling: the same claim/enqueue/update, no ORM, no routing, no checks."""
    import psycopg
    from django.db import connection
    from rq import Queue

    from queueing.dispatch import get_queue

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    queue = get_queue("default")
    with psycopg.connect(**params) as conn:
        while True:
            with conn.transaction():
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM outbox_outboxmessage WHERE status = 'pending' AND available_at <= now()"
                        " ORDER BY available_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
                        [batch],
                    )
                ]
                if not ids:
                    return
                with queue.connection.pipeline() as pipe:
                    if rpush_only:
                        pipe.rpush(queue.key, *ids)
                    elif per_job > 1:
                        # The alternative design: one RQ job carries several messages.
                        chunks = [ids[i : i + per_job] for i in range(0, len(ids), per_job)]
                        datas = [
                            Queue.prepare_data("outbox.jobs.deliver", args=[c, "bench.outbox_routes.noop"],
                                               job_id=f"bare-{c[0]}", result_ttl=0)
                            for c in chunks
                        ]  # fmt: skip
                        queue.enqueue_many(datas, pipeline=pipe)
                    else:
                        datas = [
                            Queue.prepare_data("outbox.jobs.deliver", args=[i, "bench.outbox_routes.noop"],
                                               job_id=f"bare-{i}", result_ttl=0)
                            for i in ids
                        ]  # fmt: skip
                        queue.enqueue_many(datas, pipeline=pipe)
                    pipe.execute()
                conn.execute(
                    "UPDATE outbox_outboxmessage SET status = 'dispatched', dispatched_at = now(),"
                    " attempts = attempts + 1 WHERE id = ANY(%s)",
                    [ids],
                )


def _bare_rpush(batch: int) -> None:
    _bare(batch, rpush_only=True)


def _bare_per_job_50(batch: int) -> None:
    _bare(batch, per_job=50)


def _latency(samples: int) -> tuple[float, float, float]:
    import django_rq
    from django.db import transaction

    import outbox
    from queueing.dispatch import get_queue

    _reset(0)
    env = {**os.environ, "OUTBOX_ROUTE_MODULES": "bench.outbox_routes"}
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "outbox_process", "--loop", "-v", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conn, key = django_rq.get_connection("default"), get_queue("default").key
    try:
        time.sleep(3)
        found = []
        for i in range(samples):
            with transaction.atomic():
                outbox.publish(EVENT, {"n": i}, aggregate=("bench", i))
            committed = time.perf_counter()
            while not conn.llen(key):
                if relay.poll() is not None or time.perf_counter() - committed > 30:
                    raise RuntimeError(f"the relay moved nothing within 30 s (relay exit status {relay.poll()})")
                time.sleep(0.0005)
            found.append(time.perf_counter() - committed)
            conn.delete(key)
            time.sleep(0.02)  # idle between messages: the case the target is about
    finally:
        relay.terminate()
        relay.wait(timeout=30)
    found.sort()
    return statistics.median(found), found[int(len(found) * 0.99) - 1], found[-1]


def run() -> None:
    from django.conf import settings

    from outbox.models import OutboxMessage

    os.environ.setdefault("OUTBOX_ROUTE_MODULES", "bench.outbox_routes")
    import bench.outbox_routes  # noqa: F401 - registers the route in this process (forks inherit it)

    n = int(os.environ.get("BENCH_OUTBOX", "20000"))
    per_job = settings.OUTBOX_MESSAGES_PER_JOB
    batched = f"our relay, ≤{per_job} msgs per job"
    rows, ratios = [], []
    ceilings: dict[tuple[int, int], float] = {}
    for batch in (1, 100, 500, 2000):
        count = max(500, n // 10) if batch == 1 else n
        for relays in (1, 2):
            variants: list[tuple[str, Callable[[int], None]]] = [
                ("bare loop, RQ enqueue_many", _bare),
                ("our relay, 1 job per msg", _ours),
                (batched, _ours_batched),
                ("bare loop, RPUSH only", _bare_rpush),
            ]
            if batch >= 500:
                variants.append(("bare loop, 1 RQ job per 50 msgs", _bare_per_job_50))
            rates: dict[str, float] = {}
            for name, worker in variants:
                _reset(count)
                elapsed = _parallel(worker, batch, relays)
                left = OutboxMessage.objects.filter(status="pending").count()
                assert left == 0, f"{name}: {left} messages left"
                rate = rates[name] = count / elapsed
                if name.startswith("bare loop, RQ"):
                    ceilings[(batch, relays)] = rate
                ratio = f"{rate / ceilings[(batch, relays)]:.0%}"
                rows.append(
                    [name, str(batch), str(relays), f"{count:,}", f"{rate:,.0f}", f"{1e6 / rate * relays:,.0f}", ratio]
                )
            single = rates["our relay, 1 job per msg"]
            ratios.append(
                [str(batch), str(relays), f"{single:,.0f}", f"{rates[batched]:,.0f}",
                 f"{rates[batched] / relays:,.0f}", f"{rates[batched] / single:.1f}×"]
            )  # fmt: skip
    table(
        "Outbox relay: messages/s (ratio: vs the bare loop with the same RQ enqueue path, same batch and relays)",
        ["path", "batch", "relays", "messages", "msgs/s", "µs/msg/relay", "vs bare RQ"],
        rows,
    )
    table(
        f"Outbox relay: batches (≤{per_job} messages per job) against one job per message, same run",
        ["claim", "relays", "1 job/msg msgs/s", "batched msgs/s", "batched per relay", "ratio"],
        ratios,
    )
    deliver = int(os.environ.get("BENCH_OUTBOX_DELIVER", "5000"))
    delivered = []
    _reset(0)
    boot = min(_burst_worker() for _ in range(3))  # Django and the worker starting, nothing to do
    for size in (1, per_job):
        relay_s, worker_s, jobs = _delivered(deliver, size, boot)
        delivered.append(
            [f"{size}", f"{deliver:,}", f"{jobs:,}", f"{deliver / relay_s:,.0f}", f"{deliver / worker_s:,.0f}",
             f"{deliver / (relay_s + worker_s):,.0f}"]
        )  # fmt: skip
    table(
        f"Outbox end to end: {deliver:,} no-op messages, relay (claim 500) then one burst worker"
        f" (its {boot:.1f} s start, measured empty, left out)",
        ["msgs per job", "messages", "jobs", "relay msgs/s", "worker msgs/s", "overall msgs/s"],
        delivered,
    )
    samples = int(os.environ.get("BENCH_LATENCY", "200"))
    p50, p99, worst = _latency(samples)
    table(
        f"Commit → job on the queue, relay in --loop mode (LISTEN/NOTIFY), {samples} idle samples",
        ["p50 ms", "p99 ms", "max ms"],
        [[f"{p50 * 1000:.1f}", f"{p99 * 1000:.1f}", f"{worst * 1000:.1f}"]],
    )
