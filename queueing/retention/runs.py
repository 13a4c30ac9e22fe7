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
from datetime import datetime

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


def purge_continue(run: PurgeRun, *, budget: float | None = None) -> bool:
    """Run (a slice of) the purge; True when it has finished. Figures add up in ``run.results``."""
    chosen, tenant_id = select([name for name in run.only.split(",") if name], run.tenant)
    scope = Scope(now=run.clock, tenant_id=tenant_id)
    deadline = time.monotonic() + budget if budget is not None else None
    results = {name: KindResult.from_json(data) for name, data in run.results.items()}
    finished = True
    try:
        for kind in chosen:
            figures = results.setdefault(kind.name, KindResult())
            condition = engine.purgeable(kind, scope)
            if condition is None:
                figures.skipped = "not tenant data"
                continue
            done, finished = engine.delete(kind, condition, deadline=deadline)
            figures.add(done)
            if done.rows:
                log.info("purge %s: %d rows, %d files deleted", kind.name, done.rows, done.files)
            if not finished:
                break
        if finished and tenant_id is None:
            for kind in chosen:
                for name, _ in files.orphans(kind, scope.now):
                    size_of = files.delete(name)
                    if size_of is not None:
                        results[kind.name].orphans += 1
                        results[kind.name].orphan_bytes += size_of
    except Exception as exc:
        _record(run, results, PurgeRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    _record(run, results, PurgeRun.Status.DONE if finished else PurgeRun.Status.RUNNING)
    return finished


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


def _record(run: PurgeRun, results: Results, status: str, *, error: str = "") -> None:
    run.results = {name: figures.as_json() for name, figures in results.items()}
    run.status = status
    run.error = error
    update = ["results", "status", "error"]
    if status != PurgeRun.Status.RUNNING:
        run.finished_at = timezone.now()
        update.append("finished_at")
    run.save(update_fields=update)
