"""Jobs owned by the queue runtime itself: heartbeats, smoke tests, metrics snapshots."""

from __future__ import annotations

import logging
import time
import uuid
from typing import TypeVar

from django.conf import settings

from lib.text import as_text
from queueing import keys
from queueing.definitions import job
from queueing.dispatch import redis_connection

log = logging.getLogger(__name__)

T = TypeVar("T")


def echo(value: T) -> T:
    """A no-op that returns its argument: proves a queue round trip end to end."""
    return value


@job(timeout=60, tries=1)  # tries=1: the next beat, a minute later, is the retry
def heartbeat(queue: str) -> dict[str, str]:
    """Record that a worker consumed ``queue`` just now (dispatched onto that queue),
    with the results of the probes run from inside it (queueing/heartbeat.py)."""
    from queueing import heartbeat as beats

    conn = redis_connection()
    results = beats.run_probes(conn, external=beats.external_turn(conn, queue))
    beats.record(conn, queue, results)
    return {name: error or "ok" for name, error in results.items()}


@job(timeout=30)
def smoke_probe(queue: str, token: str) -> None:
    """The no-op of the smoke test: proves a job put on ``queue`` runs."""
    redis_connection().hset(keys.SMOKE, f"{queue}:done", token)


@job(timeout=60, unique_for=240)
def smoke_test() -> dict[str, str]:
    """Check the previous probe of every queue ran, then send new ones."""
    conn = redis_connection()
    report = {}
    for queue in settings.RQ_QUEUES:
        sent = as_text(conn.hget(keys.SMOKE, f"{queue}:sent"))
        done = as_text(conn.hget(keys.SMOKE, f"{queue}:done"))
        if not sent:
            report[queue] = "first probe"
        elif sent.split("@")[0] == done:
            report[queue] = "ok"
        else:
            report[queue] = "previous probe did not run"
            log.error("smoke test: queue %s did not run its probe (sent %s)", queue, sent)
        token = uuid.uuid4().hex
        conn.hset(keys.SMOKE, f"{queue}:sent", f"{token}@{time.time()}")
        smoke_probe.on_queue(queue).dispatch(queue, token)
    return report


@job(timeout=120, unique_for=240)
def snapshot() -> int:
    """``queue_snapshot`` on the schedule: metrics history for the dashboard's charts."""
    from queueing.services import metrics_snapshot

    return metrics_snapshot(conn=redis_connection())


# tries=1: the next minute's run is the retry; retrying a failed check would only pile up behind it.
@job(timeout=60, unique_for=55, tries=1)
def check_alerts(queue: str) -> list[str]:
    """The alerts on the schedule (every minute, once on each queue: a dead queue
    cannot report itself); ``queue`` only keeps the two copies' unique locks apart.
    Returns the firing conditions."""
    from queueing.alerts import check_alerts as run_checks

    return run_checks(redis_connection())


# The purge runs in slices of PURGE_SLICE seconds, each its own job, for the
# reason the outbox prune does: a short timeout keeps a deploy's drain short,
# and a slice cut short loses nothing (the run's clock and figures are in its
# PurgeRun row; the next slice carries on).
PURGE_SLICE = 240


@job(queue="maintenance", timeout=PURGE_SLICE + 60, unique_for=3600, unique_until_processing=True)
def purge(run_id: int | None = None) -> dict[str, int]:
    """Nightly at 00:00: the retention purge (queueing/retention/, docs/retention.md)."""
    from queueing.models import PurgeRun
    from queueing.retention.runs import purge_continue, purge_resume_or_start

    run = (
        PurgeRun.objects.filter(pk=run_id).first() if run_id is not None else purge_resume_or_start(trigger="schedule")
    )
    if run is None or run.status != PurgeRun.Status.RUNNING:
        return {}  # a slice delivered twice, or a run deleted meanwhile: nothing to carry on
    if not purge_continue(run, budget=PURGE_SLICE):
        purge.dispatch(run.pk)  # the next slice (jobs run in autocommit: enqueued now)
    return {"run": run.pk, "rows": run.rows}
