"""The purge as a service: preview (dry run), start a run, carry it on, record it.

``manage.py purge`` and the nightly ``queueing.jobs.purge`` are thin callers.
A run fixes its clock when it starts, so a run cut into slices (the job
hands on after a time budget) deletes against one set of cutoffs, and a
dry run taken with the same clock reports exactly what the run removes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from queueing.models import PurgeRun
from queueing.retention import engine, files
from queueing.retention.engine import KindResult, Scope
from queueing.retention.kinds import Kind, RetentionError, kind_named, kinds, tenancy

log = logging.getLogger("queueing.retention")

Results = dict[str, KindResult]


def select(only: Sequence[str] = (), tenant: str = "") -> tuple[list[Kind], int | None]:
    """The kinds and tenant a run covers; RetentionError names an unknown kind or tenant."""
    chosen = [kind_named(name) for name in dict.fromkeys(only)] if only else kinds()
    tenant_id = None
    if tenant:
        registered = tenancy()
        if registered is None:
            raise RetentionError("no tenants are registered with the purge: --tenant cannot be used")
        tenant_id = registered.resolve(tenant)
    return chosen, tenant_id


def purge_preview(*, only: Sequence[str] = (), tenant: str = "", now: datetime | None = None) -> Results:
    """What a purge with the same clock would remove, per kind; changes nothing."""
    chosen, tenant_id = select(only, tenant)
    scope = Scope(now=now or timezone.now(), tenant_id=tenant_id)
    results: Results = {}
    for kind in chosen:
        condition = engine.purgeable(kind, scope)
        if condition is None:
            results[kind.name] = KindResult(skipped="not tenant data")
            continue
        results[kind.name] = engine.measure(kind, condition)
        if tenant_id is None:
            for _, size_of in files.orphans(kind, scope.now):
                results[kind.name].orphans += 1
                results[kind.name].orphan_bytes += size_of
    return results


def purge_start(*, trigger: str, only: Sequence[str] = (), tenant: str = "", now: datetime | None = None) -> PurgeRun:
    select(only, tenant)  # an unknown kind or tenant fails here, before a run is recorded
    return PurgeRun.objects.create(
        trigger=trigger, only=",".join(dict.fromkeys(only)), tenant=tenant, clock=now or timezone.now()
    )


def purge_resume_or_start(*, trigger: str) -> PurgeRun:
    """The nightly job's run: one of this trigger still running (a slice whose worker
    died, retried) carries on; one older than a day is given up; else a new run."""
    stale = timezone.now() - timedelta(days=1)
    PurgeRun.objects.filter(trigger=trigger, status=PurgeRun.Status.RUNNING, started_at__lt=stale).update(
        status=PurgeRun.Status.FAILED, error="abandoned: no slice carried it on for a day", finished_at=timezone.now()
    )
    running = PurgeRun.objects.filter(trigger=trigger, status=PurgeRun.Status.RUNNING).order_by("-started_at").first()
    return running or purge_start(trigger=trigger)


def purge_continue(run: PurgeRun, *, budget: float | None = None) -> bool:
    """Run (a slice of) the purge; True when it has finished. Figures add up in
    ``run.results``; kinds finished in an earlier slice are not walked again, and the
    orphan sweep is a step of its own. A slice does some work before it looks at
    its budget, so every slice makes progress."""
    deadline = time.monotonic() + budget if budget is not None else None
    results = {name: KindResult.from_json(data) for name, data in run.results.items()}
    finished_kinds = set(run.finished_kinds)
    worked = False

    def out_of_time() -> bool:
        return worked and deadline is not None and time.monotonic() >= deadline

    try:
        chosen, tenant_id = select([name for name in run.only.split(",") if name], run.tenant)
        scope = Scope(now=run.clock, tenant_id=tenant_id)
        for kind in chosen:
            if kind.name in finished_kinds:
                continue
            if out_of_time():
                return _record(run, results, finished_kinds, PurgeRun.Status.RUNNING)
            figures = results.setdefault(kind.name, KindResult())
            condition = engine.purgeable(kind, scope)
            if condition is None:
                figures.skipped = "not tenant data"
                finished_kinds.add(kind.name)
                continue
            done, kind_finished = engine.delete(kind, condition, deadline=deadline)
            worked = True
            figures.add(done)
            if done.rows:
                log.info("purge %s: %d rows, %d files deleted", kind.name, done.rows, done.files)
            if not kind_finished:
                return _record(run, results, finished_kinds, PurgeRun.Status.RUNNING)
            finished_kinds.add(kind.name)
        if tenant_id is None and not run.swept:
            if out_of_time():
                return _record(run, results, finished_kinds, PurgeRun.Status.RUNNING)
            for kind in chosen:
                for name, _ in files.orphans(kind, scope.now):
                    size_of = files.delete(name)
                    if size_of is not None:
                        results[kind.name].orphans += 1
                        results[kind.name].orphan_bytes += size_of
            run.swept = True
    except BaseException as exc:  # Ctrl-C on the command too: the run must not stay "running"
        _record_failure(run, results, finished_kinds, exc)
        raise
    return _record(run, results, finished_kinds, PurgeRun.Status.DONE)


def purge(
    *,
    trigger: str,
    only: Sequence[str] = (),
    tenant: str = "",
    now: datetime | None = None,
) -> PurgeRun:
    """A whole purge in this process, to the end."""
    run = purge_start(trigger=trigger, only=only, tenant=tenant, now=now)
    purge_continue(run)
    return run


def _record(run: PurgeRun, results: Results, finished_kinds: set[str], status: str, *, error: str = "") -> bool:
    """Save the run's figures and state; True when it has finished."""
    run.results = {name: figures.as_json() for name, figures in results.items()}
    run.finished_kinds = sorted(finished_kinds)
    run.status = status
    run.error = error
    update = ["results", "finished_kinds", "swept", "status", "error"]
    if status != PurgeRun.Status.RUNNING:
        run.finished_at = timezone.now()
        update.append("finished_at")
    run.save(update_fields=update)
    return status != PurgeRun.Status.RUNNING


def _record_failure(run: PurgeRun, results: Results, finished_kinds: set[str], exc: BaseException) -> None:
    # The connection may be what failed: a fresh one records the failure, or the
    # nightly job's next slice (or a day later, purge_resume_or_start) does.
    try:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        _record(run, results, finished_kinds, PurgeRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    except Exception:
        log.exception("purge %s: could not record its failure", run.pk)
