"""HTTP for the queue dashboard. GETs render what ``panels`` gathers; every
POST calls an existing service, writes one audit entry and redirects back
(POST/redirect/GET, so a reload never repeats an action). CSRF comes from the
middleware: no view here is exempt."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from lib.client_ip import audit_ip
from queueing import control, selectors, status, unique
from queueing.dashboard import panels
from queueing.dashboard.access import can_operate_dashboard, dashboard_access, dashboard_operate
from queueing.dashboard.filters import Filters, failed_queryset
from queueing.dashboard.layout import layout_rows
from queueing.dispatch import redis_connection
from queueing.models import FailedJob
from queueing.services import audit_record, failed_job_flush, failed_job_forget, failed_job_retry, failed_jobs_target

# --------------------------------------------------------------------------- pages


@never_cache
@dashboard_access
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "queueing/dashboard/index.html", _context(request))


@never_cache
@dashboard_access
@require_GET
def live(request: HttpRequest) -> HttpResponse:
    """The refreshing part of the page, fetched by dashboard.js every few seconds."""
    return render(request, "queueing/dashboard/_live.html", _context(request))


@never_cache
@dashboard_access
@require_GET
def failed_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(FailedJob, pk=pk)
    context = {
        **admin.site.each_context(request),
        "title": f"Failed job #{job.pk}",
        "can_operate": can_operate_dashboard(request.user),
        "job": job,
        "args_json": json.dumps(job.args, indent=2, ensure_ascii=False),
        "kwargs_json": json.dumps(job.kwargs, indent=2, ensure_ascii=False),
        "return_to": request.GET.get("back") or reverse("queue_dashboard:index"),
    }
    if not _safe(request, context["return_to"]):
        context["return_to"] = reverse("queue_dashboard:index")
    return render(request, "queueing/dashboard/failed_detail.html", context)


def _context(request: HttpRequest) -> dict[str, Any]:
    filters = Filters.from_query(request.GET)
    index_url = reverse("queue_dashboard:index")
    here = filters.as_query(before=filters.before)
    return {
        **admin.site.each_context(request),
        **panels.live(redis_connection(), filters),
        "layout": layout_rows(),
        "title": "Queue dashboard",
        "can_operate": can_operate_dashboard(request.user),
        "filters": filters,
        "query": here,
        "return_to": f"{index_url}?{here}" if here else index_url,
        "live_url": reverse("queue_dashboard:live") + (f"?{here}" if here else ""),
    }


# --------------------------------------------------------------------------- failed jobs


@dashboard_operate
@require_POST
def failed_retry(request: HttpRequest) -> HttpResponse:
    """scope=selected (ids), all, or filter (queue and/or exact job name)."""
    scope = request.POST.get("scope", "selected")
    if scope == "all":
        with transaction.atomic():  # the audit row commits with the ledger change, dispatches after both
            new_ids = failed_job_retry()
            _audit(request, "retry", "failed_jobs:all", dispatched=len(new_ids))
        return _back(request, f"Dispatched {len(new_ids)} failed job(s) again.")
    if scope == "filter":
        queue = request.POST.get("queue", "").strip()
        job = request.POST.get("job", "").strip()
        if queue and queue not in selectors.queue_names():
            return _back(request, f"Unknown queue {queue!r}.", messages.ERROR)
        if not (queue or job):
            return _back(request, "Choose a queue or a job name to retry by filter.", messages.ERROR)
        target = "failed_jobs:" + ",".join(f"{k}={v}" for k, v in (("queue", queue), ("job", job)) if v)
        with transaction.atomic():
            if job:
                ids = list(failed_queryset(Filters(queue=queue, job=job)).values_list("pk", flat=True))
                new_ids = failed_job_retry(ids=ids)
            else:
                new_ids = failed_job_retry(queue=queue)
            _audit(request, "retry", target, queue=queue, job=job, dispatched=len(new_ids))
        return _back(request, f"Dispatched {len(new_ids)} failed job(s) again ({target.partition(':')[2]}).")
    ids = _ids(request)
    if not ids:
        return _back(request, "Select at least one failed job to retry.", messages.ERROR)
    with transaction.atomic():
        names = dict(FailedJob.objects.filter(pk__in=ids).values_list("pk", "job_name"))
        new_ids = failed_job_retry(ids=ids)
        _audit(
            request, "retry", failed_jobs_target(ids), ids=ids, jobs=sorted(set(names.values())), new_job_ids=new_ids
        )
    gone = len(ids) - len(new_ids)
    note = f" {gone} were already gone (retried or forgotten meanwhile)." if gone else ""
    return _back(request, f"Dispatched {len(new_ids)} failed job(s) again.{note}")


@dashboard_operate
@require_POST
def failed_forget(request: HttpRequest) -> HttpResponse:
    ids = _ids(request)
    if not ids:
        return _back(request, "Select at least one failed job to forget.", messages.ERROR)
    with transaction.atomic():
        deleted = failed_job_forget(ids=ids)
        _audit(request, "forget", failed_jobs_target(ids), ids=ids, deleted=deleted)
    return _back(request, f"Forgot {deleted} failed job(s).")


@dashboard_operate
@require_POST
def failed_flush(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("older_than_hours", "").strip()
    if raw and not (raw.isdigit() and int(raw) > 0):
        return _back(request, f"older_than_hours must be a positive whole number, got {raw!r}.", messages.ERROR)
    hours = int(raw) if raw else None
    with transaction.atomic():
        deleted = failed_job_flush(older_than_hours=hours)
        target = f"failed_jobs:older_than={hours}h" if hours else "failed_jobs:all"
        _audit(request, "flush", target, older_than_hours=hours, deleted=deleted)
    return _back(request, f"Flushed {deleted} failed job(s).")


# --------------------------------------------------------------------------- queues and locks


@dashboard_operate
@require_POST
def queue_pause(request: HttpRequest, queue: str) -> HttpResponse:
    _known_queue(queue)
    changed = control.queue_pause(redis_connection(), queue)
    _audit(request, "pause", f"queue:{queue}", changed=changed)
    return _back(request, f"Paused {queue}: workers stop taking its jobs." if changed else f"{queue} was paused.")


@dashboard_operate
@require_POST
def queue_continue(request: HttpRequest, queue: str) -> HttpResponse:
    _known_queue(queue)
    changed = control.queue_continue(redis_connection(), queue)
    _audit(request, "continue", f"queue:{queue}", changed=changed)
    return _back(request, f"Continued {queue}." if changed else f"{queue} was not paused.")


@dashboard_operate
@require_POST
def lock_release(request: HttpRequest) -> HttpResponse:
    key = request.POST.get("key", "")
    try:
        released = unique.force_release(redis_connection(), key)
    except ValueError as exc:
        return _back(request, str(exc), messages.ERROR)
    _audit(request, "unlock", key, released=released)
    return _back(request, f"Released {key}." if released else f"{key} had already expired or been released.")


@dashboard_operate
@require_POST
def panel_action(request: HttpRequest, provider: str, action: str) -> HttpResponse:
    registered = status.get_action(provider, action)
    if registered is None:
        raise Http404(f"No action {action!r} on the {provider!r} panel.")
    result = registered.run()
    _audit(request, f"{provider}.{action}", provider, result=result)
    return _back(request, result)


# --------------------------------------------------------------------------- helpers


def _known_queue(queue: str) -> None:
    if queue not in selectors.queue_names():
        raise Http404(f"Unknown queue {queue!r}; queues: {', '.join(selectors.queue_names())}.")


def _ids(request: HttpRequest) -> list[int]:
    return sorted({int(raw) for raw in request.POST.getlist("ids") if raw.strip().isdigit()})


def _audit(request: HttpRequest, action: str, target: str, **detail: Any) -> None:
    audit_record(user=request.user, action=action, target=target, detail=detail, ip=audit_ip(request))


def _safe(request: HttpRequest, url: str) -> bool:
    return url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())


def _back(request: HttpRequest, text: str, level: int = messages.SUCCESS) -> HttpResponseRedirect:
    messages.add_message(request, level, text)
    target = request.POST.get("next", "")
    return redirect(target if target and _safe(request, target) else reverse("queue_dashboard:index"))
