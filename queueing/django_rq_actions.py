"""django-rq's failed-job actions, kept in step with the failed-job ledger.

django-rq's pages under ``/admin/django_rq/`` requeue or delete failed jobs —
one, a selection, or all of a queue — in RQ's FailedJobRegistry only. The
ledger (``queueing.models.FailedJob``) would keep rows for jobs that are
running again or gone, and a job requeued under its old id that failed again
would find its old row: no new row, no second call of its failure hook. Each
view here runs django-rq's own, then forgets the ledger rows of the jobs that
left the failed registry through it; a requeued job that fails again is then
recorded (and its hook called) like any failure. The admin audit middleware
records the POST itself. ``config/urls.py`` routes the five views here, ahead
of django-rq's URLs. docs/rq-contract.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django_rq import views
from django_rq.queues import get_queue_by_index
from rq import Queue

from queueing.dispatch import get_queue
from queueing.services import failed_job_forget_by_job_ids

View = Callable[..., HttpResponse]


def _still_failed(queue: Queue, job_ids: Iterable[str] | None) -> set[str]:
    """Which of ``job_ids`` sit in a failed registry (None: all of ``queue``'s).

    Named jobs are looked for in every queue's registry: django-rq acts on a
    job by its id, whatever queue page the button was on."""
    if job_ids is None:
        return set(queue.failed_job_registry.get_job_ids())
    ids = list(job_ids)
    keys = [get_queue(name).failed_job_registry.key for name in settings.RQ_QUEUES]
    with queue.connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            for key in keys:
                pipe.zscore(key, job_id)
        scores = pipe.execute()
    found = set()
    for i, job_id in enumerate(ids):
        if any(score is not None for score in scores[i * len(keys) : (i + 1) * len(keys)]):
            found.add(job_id)
    return found


def ledger_synced(view: View, selected: Callable[[HttpRequest, dict[str, Any]], list[str] | None]) -> View:
    """``view`` (django-rq's), then the ledger rows of what left the failed registry go too.

    ``selected`` names the jobs the request acts on (None: the whole registry)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, queue_index: int, **kwargs: Any) -> HttpResponse:
        # django-rq names its redirects after the admin site serving it, as its own URLs do.
        request.current_app = admin.site.name
        if request.method != "POST":
            return view(request, queue_index, **kwargs)
        queue = get_queue_by_index(queue_index)
        ids = selected(request, kwargs)
        before = _still_failed(queue, ids)
        response = view(request, queue_index, **kwargs)
        if before:
            failed_job_forget_by_job_ids(before - _still_failed(queue, before))
        return response

    return wrapper


def _one(request: HttpRequest, kwargs: dict[str, Any]) -> list[str]:
    return [kwargs["job_id"]]


def _posted(request: HttpRequest, kwargs: dict[str, Any]) -> list[str]:
    if request.POST.get("action") not in {"delete", "requeue"}:
        return []
    return request.POST.getlist("job_ids")


def _all(request: HttpRequest, kwargs: dict[str, Any]) -> None:
    return None


delete_job = ledger_synced(views.delete_job, _one)
requeue_job = ledger_synced(views.requeue_job_view, _one)
requeue_all = ledger_synced(views.requeue_all, _all)
delete_failed_jobs = ledger_synced(views.delete_failed_jobs, _all)
actions = ledger_synced(views.actions, _posted)
