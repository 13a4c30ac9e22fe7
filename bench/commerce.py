"""Commerce benchmarks, each against a baseline measured in the same run.

1. ReleaseStaleOrders over BENCH_RELEASE_TOTAL orders (default 1,000,000) of
   which BENCH_RELEASE_STALE (10,000) are stale, against a naive loop calling
   ``order_cancel`` per order on another tenant's equally many stale orders.
2. XLSX export of BENCH_EXPORT_ROWS orders (100,000) by a real worker: time and
   peak RSS, against the same worker running one no-op job.
3. The Standard Webhooks endpoint under gunicorn (4 workers) on loopback,
   driven by bench/loadgen.py (requests signed before the clock starts), against a trivial view (/healthz)
   in the same server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import table
from bench.loadgen import gunicorn, raw_request, run_load


def _fill(total: int, stale: int) -> tuple[int, int]:
    """Bulk-insert ``total`` orders across two tenants; ``stale`` of each tenant's are
    PENDING and 45 minutes old, with one item each."""
    from django.db import connection

    from tests.factories import ProductFactory, TenantFactory

    tenants = [TenantFactory.create(), TenantFactory.create()]
    products = [ProductFactory.create(tenant=t, stock_quantity=0) for t in tenants]
    with connection.cursor() as cur:
        for tenant, product in zip(tenants, products, strict=True):
            cur.execute(
                "INSERT INTO orders_order (tenant_id, number, status, customer_email, total, currency, created_at,"
                " cancel_reason) SELECT %s, 'B' || %s || '-' || g, CASE WHEN g <= %s THEN 'PENDING' ELSE 'PAID' END,"
                " 'c@example.com', 10, 'USD', now() - interval '45 minutes' - (g || ' seconds')::interval, ''"
                " FROM generate_series(1, %s) g",
                [tenant.pk, tenant.pk, stale, total // 2],
            )
            cur.execute(
                "INSERT INTO orders_orderitem (order_id, product_id, quantity, unit_price)"
                " SELECT id, %s, 1, 10 FROM orders_order WHERE tenant_id = %s AND status = 'PENDING'",
                [product.pk, tenant.pk],
            )
        cur.execute("ANALYZE orders_order")
    return tenants[0].pk, tenants[1].pk


class _QueryCounter:
    """Counts every statement Django sends (CaptureQueriesContext caps at 9,000)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def _release() -> list[list[str]]:
    from django.db import connection

    from orders.models import Order
    from orders.services import order_cancel, order_release_stale

    total = int(os.environ.get("BENCH_RELEASE_TOTAL", "1000000"))
    stale = int(os.environ.get("BENCH_RELEASE_STALE", "10000"))
    naive_tenant, ours_tenant = _fill(total, stale)
    rows = []
    counter = _QueryCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        for order_id in Order.objects.filter(tenant_id=naive_tenant, status="PENDING").values_list("id", flat=True):
            order_cancel(order_id=order_id, reason="stale")
        naive = time.perf_counter() - started
    rows.append(["naive loop (order_cancel per order)", f"{stale:,}", f"{naive:.2f}", f"{counter.take():,}", "1.0x"])
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        released = order_release_stale(older_than=timedelta(minutes=30), tenant_id=ours_tenant).released
        ours = time.perf_counter() - started
    assert released == stale, released
    rows.append(["order_release_stale (set-based)", f"{released:,}", f"{ours:.2f}", f"{counter.take():,}",
                 f"{naive / ours:.1f}x faster"])  # fmt: skip
    table(
        f"ReleaseStaleOrders: {stale:,} stale among {total:,} orders",
        ["path", "released", "seconds", "queries", "vs naive"],
        rows,
    )
    return rows


def _peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Run a command in a fresh helper process; return (seconds, peak RSS MB of the command)."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True,"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(time.perf_counter() - t,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024


def _export() -> None:
    import django_rq
    from django.db import connection
    from django.utils import timezone

    from orders.models import SalesExport
    from queueing.jobs import heartbeat
    from tests.factories import TenantFactory

    rows = int(os.environ.get("BENCH_EXPORT_ROWS", "100000"))
    tenant = TenantFactory.create()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO orders_order (tenant_id, number, status, customer_email, total, currency, created_at, paid_at,"
            " cancel_reason) SELECT %s, 'X-' || g, 'PAID', 'customer' || g || '@example.com', 19.99, 'USD',"
            " now() - (g || ' seconds')::interval, now(), '' FROM generate_series(1, %s) g",
            [tenant.pk, rows],
        )
    worker = [sys.executable, "manage.py", "rqworker", "default", "--burst", "-v", "0"]
    django_rq.get_connection("default").flushdb()
    heartbeat.dispatch("default")
    base_s, base_mb = _peak_rss_mb(worker)
    today = timezone.localdate()
    export = SalesExport.objects.create(tenant=tenant, date_from=today - timedelta(days=30), date_to=today)
    from orders.jobs import generate_sales_export

    generate_sales_export.dispatch(tenant.pk, export.pk)
    seconds, peak_mb = _peak_rss_mb(worker)
    export.refresh_from_db()
    assert export.status == "done" and export.rows_done == rows, (export.status, export.rows_done)
    table(
        f"XLSX export of {rows:,} orders by a real worker (peak RSS of the worker process)",
        ["job", "seconds", "peak RSS MB", "vs no-op worker"],
        [
            ["no-op job (baseline)", f"{base_s:.1f}", f"{base_mb:.0f}", "1.0x"],
            ["GenerateSalesExport (XLSX)", f"{seconds:.1f}", f"{peak_mb:.0f}", f"{peak_mb / base_mb:.2f}x RSS"],
        ],
    )


def _webhooks() -> None:
    from standardwebhooks.webhooks import Webhook

    from tests.factories import ProductFactory
    from webhooks.models import WebhookEvent

    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    product = ProductFactory.create()
    signer = Webhook(secret)
    seconds = float(os.environ.get("BENCH_HTTP_SECONDS", "8"))
    rounds = 3

    def signed_webhooks(count: int) -> list[bytes]:
        # Built and signed before the clock starts, each with its own event
        # id (a repeated id would take the cheaper duplicate path).
        body = json.dumps(
            {"type": "payment.succeeded", "data": {"order_id": product.pk, "amount": "10.00", "currency": "USD"}}
        )
        stamp = datetime.now(UTC)
        built = []
        for _ in range(count):
            msg_id = f"msg_{uuid.uuid4().hex}"
            headers = {
                "Content-Type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(stamp.timestamp())),
                "webhook-signature": signer.sign(msg_id=msg_id, timestamp=stamp, data=body),
            }
            built.append(raw_request("POST", "/api/webhooks/payments/", body.encode(), headers))
        return built

    with gunicorn({"PAYMENT_WEBHOOK_SECRET": secret}) as port:
        healthz = [raw_request("GET", "/healthz")]
        # Alternate the two, three rounds each, and keep each one's best round:
        # the machine is shared, and a neighbour's burst should not decide the ratio.
        trivials, hooks_runs = [], []
        for _ in range(rounds):
            trivials.append(run_load(port, healthz, seconds=seconds))
            # Enough unique events for a server three times faster than seen here.
            hooks_runs.append(run_load(port, iter(signed_webhooks(int(seconds * 2500))), seconds=seconds))
        trivial, hooks = max(trivials), max(hooks_runs)
    stored = WebhookEvent.objects.count()
    table(
        "Payment webhook endpoint under gunicorn (4 sync workers, as in production);"
        " 8 connections on loopback, requests built and signed before the clock starts",
        ["endpoint", "req/s", "p99 ms", "non-200", "vs trivial view"],
        [
            ["GET /healthz (trivial)", f"{trivial[0]:,.0f}", f"{trivial[1]:.1f}", str(trivial[2]), "100%"],
            ["POST /api/webhooks/payments/", f"{hooks[0]:,.0f}", f"{hooks[1]:.1f}", str(hooks[2]),
             f"{hooks[0] / trivial[0]:.0%}"],
        ],
    )  # fmt: skip
    print(f"(webhook events stored: {stored:,}; each verified, stored with its outbox message, answered 200)")


def run() -> None:
    _release()
    _export()
    _webhooks()
