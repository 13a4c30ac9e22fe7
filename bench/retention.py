"""Retention: the purge against live traffic, and thumbnails beside a long purge.

1. 1,000,000 interactions past their retention (and 100,000 recent ones that
   stay) are purged by ``manage.py purge --only interactions`` while the
   tracking pixel takes load under gunicorn. Pixel req/s and p99 during the
   purge are set against the same load just before it. The purge's rate is
   set against one ``DELETE`` of the same rows in one statement (which holds
   every row lock until it commits; what the purge avoids).
2. The VeloxFactory layout: its `high` pool (thumbnails) and its `default`
   pool (the nightly purge, at nice 10) as two workers. Report thumbnails are
   requested every 0.5 s, first with nothing else running, then while the
   purge job deletes another 1,000,000 rows; latency is request → PNG stored.

BENCH_PURGE_ROWS (default 1,000,000) sets the size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, timedelta

from bench.harness import percentile, table
from bench.loadgen import client_hits, gunicorn, run_load

ROWS = int(os.environ.get("BENCH_PURGE_ROWS", "1000000"))
RECENT = 100_000
THUMBNAILS = 20
THUMBNAIL_EVERY = 0.5


def _seed(tenant_id: int, rows: int, *, days_old: int, tag: str) -> None:
    """``rows`` interactions ``days_old`` days old, in one INSERT … SELECT."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO tenants_interaction (tenant_id, kind, code, visitor, occurred_at, utm_source, utm_medium,"
            " utm_campaign, utm_term, utm_content, hit_id)"
            " SELECT %s, 'view', '', substr(md5(n::text), 1, 16),"
            " now() - make_interval(days => %s) - n * interval '1 ms', 'newsletter', '', 'spring', '', '', %s || n"
            " FROM generate_series(1, %s) n",
            [tenant_id, days_old, f"{tag}-", rows],
        )
        cur.execute("ANALYZE tenants_interaction")


def _purge_under_load(tenant_id: int, slug: str) -> list[list[str]]:
    from django.db import connection, transaction
    from django.utils import timezone

    from tenants.models import Interaction

    _seed(tenant_id, ROWS, days_old=500, tag="old")
    _seed(tenant_id, RECENT, days_old=1, tag="new")
    pixel = f"/t/{slug}/pixel.gif?utm_source=newsletter"
    seconds = float(os.environ.get("BENCH_HTTP_SECONDS", "10"))
    with gunicorn({"TRACKING_TRUSTED_PROXIES": "127.0.0.1"}) as port:
        before = run_load(port, iter(client_hits(pixel, int(seconds * 6000), 0)), seconds=seconds)
        hits = client_hits(pixel, 600_000, 1_000_000)  # built before the clock: ten minutes at 1,000/s
        started = time.perf_counter()
        purge = subprocess.Popen(
            [sys.executable, "manage.py", "purge", "--only", "interactions", "-v", "0"],
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        during = run_load(port, iter(hits), seconds=3600, until=lambda: purge.poll() is not None)
        _, err = purge.communicate(timeout=3600)
        command_s = time.perf_counter() - started
        if purge.returncode != 0:
            raise RuntimeError(f"purge failed: {err}")
    from queueing.models import PurgeRun

    recorded = PurgeRun.objects.get(trigger="command")
    assert recorded.finished_at is not None
    purge_s = (recorded.finished_at - recorded.started_at).total_seconds()  # the run itself, not Django's start
    left = Interaction.objects.count()
    assert left == RECENT, f"{left} interactions left, expected the {RECENT:,} recent ones"

    # Baseline: the same rows in one statement.
    _seed(tenant_id, ROWS, days_old=500, tag="again")
    cutoff = timezone.now() - timedelta(days=395)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM tenants_interaction WHERE occurred_at < %s", [cutoff])
        one_statement = cur.rowcount
    single_s = time.perf_counter() - started
    assert one_statement == ROWS
    table(
        f"Purging {ROWS:,} expired interactions ({RECENT:,} recent ones kept) while the pixel takes load"
        " (gunicorn, 4 sync workers, 8 connections, each hit from its own client)",
        ["what", "req/s", "p99 ms", "non-2xx", "vs before the purge"],
        [
            ["pixel, before the purge", f"{before[0]:,.0f}", f"{before[1]:.1f}", str(before[2]), "1.00x"],
            ["pixel, during the purge", f"{during[0]:,.0f}", f"{during[1]:.1f}", str(during[2]),
             f"req/s {during[0] / before[0]:.2f}x, p99 {during[1] / before[1]:.2f}x"],
        ],
    )  # fmt: skip
    return [
        [f"manage.py purge --only interactions (batches, SKIP LOCKED; {command_s:.1f} s with the process start)",
         f"{ROWS:,}", f"{purge_s:.1f}",
         f"{ROWS / purge_s:,.0f}", f"{(ROWS / purge_s) / (ROWS / single_s):.2f}x"],
        ["one DELETE … WHERE occurred_at < cutoff (baseline)", f"{ROWS:,}", f"{single_s:.1f}",
         f"{ROWS / single_s:,.0f}", "1.00x"],
    ]  # fmt: skip


def _thumbnail_latencies(report_ids: list[int]) -> list[float]:
    """Request each report's thumbnail, one every THUMBNAIL_EVERY s; seconds until each PNG is stored."""
    from analytics.jobs import generate_report_thumbnail
    from analytics.models import MonthlyReport

    sent: dict[int, float] = {}
    done: dict[int, float] = {}
    tenant_id = MonthlyReport.objects.get(pk=report_ids[0]).tenant_id
    deadline = time.monotonic() + len(report_ids) * THUMBNAIL_EVERY + 120
    pending = list(report_ids)
    next_send = time.monotonic()
    while len(done) < len(report_ids):
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"{len(report_ids) - len(done)} thumbnail(s) never appeared")
        if pending and now >= next_send:
            report_id = pending.pop(0)
            sent[report_id] = time.monotonic()
            generate_report_thumbnail.dispatch(tenant_id, report_id)
            next_send += THUMBNAIL_EVERY
        ready = MonthlyReport.objects.filter(pk__in=list(sent)).exclude(thumbnail="").values_list("pk", flat=True)
        for report_id in ready:
            done.setdefault(report_id, time.monotonic())
        time.sleep(0.02)
    return [done[r] - sent[r] for r in report_ids]


def _thumbnails_beside_a_purge(tenant_id: int) -> None:
    import django_rq
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from analytics.models import MonthlyReport
    from analytics.reports import render_html, render_pdf, report_figures
    from queueing.jobs import purge as purge_job
    from queueing.models import PurgeRun
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    pdf = render_pdf(render_html(report_figures(tenant=tenant, month=date(2026, 3, 1))))
    name = default_storage.save(f"reports/{tenant_id}/bench.pdf", ContentFile(pdf))
    reports = [
        MonthlyReport.objects.create(tenant=tenant, month=date(2026, 3, 1), status="done", file=name).pk
        for _ in range(2 * THUMBNAILS)
    ]
    conn = django_rq.get_connection("default")
    conn.flushdb()
    env = {**os.environ, "QUEUE_LAYOUT": "veloxfactory"}
    manage = [sys.executable, "manage.py", "rqworker", "-v", "0", "--sleep", "1"]
    procs = [
        subprocess.Popen(["nice", "-n", "10", *manage, "default"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([*manage, "high"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while conn.scard("rq:workers") < len(procs):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.1)
        idle = _thumbnail_latencies(reports[:THUMBNAILS])
        _seed(tenant_id, ROWS, days_old=500, tag="nightly")
        purge_job.dispatch()
        deadline = time.monotonic() + 60
        while not PurgeRun.objects.filter(trigger="schedule", status="running").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the purge job did not start")
            time.sleep(0.05)
        busy = _thumbnail_latencies(reports[THUMBNAILS:])
        still_running = PurgeRun.objects.filter(trigger="schedule", status="running").exists()
        deadline = time.monotonic() + 1800
        while PurgeRun.objects.filter(trigger="schedule", status="running").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the purge job did not finish")
            time.sleep(0.5)
        run = PurgeRun.objects.get(trigger="schedule")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=120)
    purged = run.results["interactions"]["rows"]
    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else float("nan")
    table(
        f"VeloxFactory layout: report thumbnails (request → PNG stored) on `high`, {THUMBNAILS} requests 0.5 s apart,"
        f" idle and while the nightly purge job deletes {purged:,} rows on `default` (nice 10; it took {took:.0f} s"
        f"{'' if still_running else ', and ended before the last request'})",
        ["when", "p50 ms", "p95 ms", "max ms", "p95 vs idle"],
        [
            ["idle", f"{percentile(idle, 0.5) * 1000:,.0f}", f"{percentile(idle, 0.95) * 1000:,.0f}",
             f"{max(idle) * 1000:,.0f}", "1.00x"],
            ["during the purge", f"{percentile(busy, 0.5) * 1000:,.0f}", f"{percentile(busy, 0.95) * 1000:,.0f}",
             f"{max(busy) * 1000:,.0f}", f"{percentile(busy, 0.95) / percentile(idle, 0.95):.2f}x"],
        ],
    )  # fmt: skip


def run() -> None:
    from tests.factories import TenantFactory

    tenant = TenantFactory.create()
    rows = _purge_under_load(tenant.pk, tenant.slug)
    table(
        "Purge rate (ratio: rows/s against one DELETE statement in the same run)",
        ["how", "rows", "seconds", "rows/s", "vs one statement"],
        rows,
    )
    _thumbnails_beside_a_purge(tenant.pk)
