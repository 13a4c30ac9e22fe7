"""Outbound webhooks (webhooks/outbound/): delivery throughput, and what one
dead endpoint costs a tenant's healthy ones.

Every run starts the relay (``outbox_process --loop``) and 4 workers
(``rqworker default high``) as subprocesses, waits until they are up (workers
registered, the relay's Redis sentinel set), publishes ``order.paid`` outbox
messages, and stops them (SIGKILL) afterwards; Redis is emptied and a fresh
tenant with fresh endpoints is used each run. Loopback receivers run in this
process (ThreadingHTTPServer threads); OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS
and OUTBOUND_WEBHOOK_REQUIRE_HTTPS=false let deliveries reach them.

1. Throughput. The receiver answers 200 after 50 ms. Baseline: BENCH_WEBHOOK_PLAIN
   (default 100) sequential ``http.client`` POSTs to it, a new connection each,
   with a delivery's body and headers → requests/s. Ours: one endpoint
   subscribed to ``order.paid``; BENCH_WEBHOOKS (default 400) messages are
   published in one transaction; deliveries/s = N / (last successful
   ``DeliveryAttempt.at`` − first ``OutboxMessage.created_at``), at
   OUTBOUND_WEBHOOK_MAX_IN_FLIGHT 1 and 4. Fails unless every delivery
   succeeded and the receiver got exactly N requests with N distinct
   ``webhook-id`` headers.
2. Isolation. 10 healthy endpoints (answer 200 at once) and 1 dead one
   (accepts the connection, never answers: the sender's read timeout, default
   10 s, ends each attempt), all of one tenant, in-flight 1.
   BENCH_WEBHOOK_RATE (default 10) events a second for BENCH_WEBHOOK_WINDOW
   (default 25) s, each published in its own transaction; then wait until
   every healthy delivery succeeded. Healthy latency = the successful
   attempt's ``at`` − the outbox message's ``created_at``; p50/p95/max, against
   the same run without the dead endpoint. Fails when the healthy p95 with the
   dead endpoint reaches 1 s. Why 10/s, not 20/s: 200 deliveries/s saturate
   a 2-core machine even with no dead endpoint (healthy-only p95 1.2-7.7 s
   there), which measures the CPU, not isolation. Why 25 s: longer than the
   lane budget (sending.LANE_BUDGET, 20 s) plus a timeout, so the dead
   endpoint's lane gives its worker back and is queued again at least once.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.harness import percentile, table

EVENT = "order.paid"
MESSAGES = int(os.environ.get("BENCH_WEBHOOKS", "400"))
PLAIN = int(os.environ.get("BENCH_WEBHOOK_PLAIN", "100"))
SLOW = 0.05  # the throughput receiver's answer time
WORKERS = 4
HEALTHY = 10  # isolation: healthy endpoints
RATE = float(os.environ.get("BENCH_WEBHOOK_RATE", "10"))  # events per second
WINDOW = float(os.environ.get("BENCH_WEBHOOK_WINDOW", "25"))  # seconds of publishing
GOAL_P95 = 1.0
SETTLE = 180.0  # seconds a run may take to deliver everything before it fails


class _Receiver:
    """Answers every POST with 200 after ``delay`` s; records (path, webhook-id)."""

    def __init__(self, delay: float) -> None:
        self.got: list[tuple[str, str]] = []
        lock = threading.Lock()
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay)
                with lock:
                    got.append((self.path, self.headers.get("webhook-id", "")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ids(self, prefix: str) -> list[str]:
        return [msg_id for path, msg_id in list(self.got) if path.startswith(prefix)]


class _BlackHole:
    """Accepts connections and never reads from or answers them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                return

    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/dead"

    def close(self) -> None:
        self.listener.close()
        for sock in self.held:
            sock.close()


def _payload(n: int) -> dict[str, Any]:
    return {
        "order_id": n,
        "number": f"ORD-BENCH-{n:08d}",
        "total": "37.50",
        "currency": "EUR",
        "customer_email": f"buyer{n}@example.com",
    }


def _publish(tenant_id: int, first: int, count: int) -> None:
    import outbox

    for n in range(first, first + count):
        outbox.publish(EVENT, _payload(n), aggregate=("order", n), tenant=tenant_id)


@contextmanager
def _engine(in_flight: int) -> Iterator[None]:
    """The relay and WORKERS workers, up and waiting, with ``in_flight`` lanes per endpoint."""
    import django_rq
    from django.conf import settings

    from outbox.relay import SENTINEL_KEY

    conn = django_rq.get_connection("default")
    conn.flushdb()
    settings.OUTBOUND_WEBHOOK_MAX_IN_FLIGHT = in_flight
    env = {**os.environ, "OUTBOUND_WEBHOOK_MAX_IN_FLIGHT": str(in_flight)}
    manage = [sys.executable, "manage.py"]
    commands = [[*manage, "outbox_process", "--loop", "-v", "0"]]
    commands += [[*manage, "rqworker", "default", "high", "-v", "0", "--sleep", "1"]] * WORKERS
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for cmd in commands]
    try:
        deadline = time.monotonic() + 60
        while conn.scard("rq:workers") < WORKERS or not conn.exists(SENTINEL_KEY):
            if time.monotonic() > deadline or any(proc.poll() is not None for proc in procs):
                raise RuntimeError("the relay or a worker did not start")
            time.sleep(0.1)
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=30)


def _wait(what: str, done: Any) -> None:
    deadline = time.monotonic() + SETTLE
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not done after {SETTLE:.0f} s")
        time.sleep(0.2)


def _failed_jobs() -> int:
    from queueing.models import FailedJob

    return FailedJob.objects.count()


def _plain_loop(receiver: _Receiver) -> tuple[float, int]:
    """Sequential POSTs of a delivery-sized, signed body: (requests/s, body bytes)."""
    from django.utils import timezone

    from outbox.routes import Event
    from webhooks.outbound import catalog, fanout, signing

    event_type = catalog.event_type(EVENT)
    assert event_type is not None, f"{EVENT} is not a registered event type"
    now = timezone.now()
    event = Event(0, EVENT, "order", "0", 1, _payload(0), {}, now)
    body = json.dumps(fanout.envelope(event_type, event), separators=(",", ":"), ensure_ascii=False)
    headers = signing.headers(fanout.new_msg_id(), now, body, [signing.seal(signing.new_secret())[0]])
    started = time.perf_counter()
    for _ in range(PLAIN):
        conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
        conn.request("POST", "/plain", body=body.encode(), headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 200, response.status
    return PLAIN / (time.perf_counter() - started), len(body.encode())


def _throughput(receiver: _Receiver, in_flight: int) -> dict[str, float]:
    from django.db import transaction
    from django.db.models import Max, Min

    from outbox.models import OutboxMessage
    from tests.factories import TenantFactory
    from webhooks.outbound.models import Delivery, DeliveryAttempt
    from webhooks.outbound.services import endpoint_create

    tenant = TenantFactory.create()
    path = f"/throughput/{in_flight}"
    endpoint, _ = endpoint_create(tenant_id=tenant.pk, url=receiver.url(path), event_types=[EVENT])
    deliveries = Delivery.objects.filter(endpoint=endpoint)
    with _engine(in_flight):
        with transaction.atomic():
            _publish(tenant.pk, 0, MESSAGES)
        _wait(f"in-flight {in_flight}", lambda: deliveries.exclude(status="pending").count() >= MESSAGES)
    first = OutboxMessage.objects.filter(tenant_id=tenant.pk).aggregate(t=Min("created_at"))["t"]
    attempts = DeliveryAttempt.objects.filter(delivery__endpoint=endpoint)
    last = attempts.filter(succeeded=True).aggregate(t=Max("at"))["t"]
    succeeded = deliveries.filter(status="succeeded").count()
    ids = receiver.ids(path)
    assert succeeded == MESSAGES, f"in-flight {in_flight}: {succeeded}/{MESSAGES} deliveries succeeded"
    assert len(ids) == MESSAGES and len(set(ids)) == MESSAGES, (
        f"in-flight {in_flight}: receiver got {len(ids)} requests, {len(set(ids))} distinct webhook-ids,"
        f" expected {MESSAGES}"
    )
    seconds = (last - first).total_seconds()
    return {"seconds": seconds, "rate": MESSAGES / seconds, "attempts": attempts.count(), "failed": _failed_jobs()}


def _max_concurrent(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def _isolation(receiver: _Receiver, dead: _BlackHole | None) -> dict[str, Any]:
    from django.db import connection, transaction

    from tests.factories import TenantFactory
    from webhooks.outbound.models import Delivery, DeliveryAttempt
    from webhooks.outbound.services import endpoint_create

    tenant = TenantFactory.create()
    prefix = f"/isolation/{tenant.pk}/"
    healthy = [
        endpoint_create(tenant_id=tenant.pk, url=receiver.url(f"{prefix}{i}"), event_types=[EVENT])[0].pk
        for i in range(HEALTHY)
    ]
    dead_id = endpoint_create(tenant_id=tenant.pk, url=dead.url(), event_types=[EVENT])[0].pk if dead else None
    events = int(RATE * WINDOW)
    expected = events * HEALTHY
    done = Delivery.objects.filter(endpoint_id__in=healthy, status="succeeded")
    with _engine(1):
        started = time.monotonic()
        for n in range(events):
            time.sleep(max(0.0, started + n / RATE - time.monotonic()))
            with transaction.atomic():
                _publish(tenant.pk, n, 1)
        _wait("isolation", lambda: done.count() >= expected)
        dead_spans = [
            (a.at.timestamp(), a.at.timestamp() + a.duration_ms / 1000)
            for a in DeliveryAttempt.objects.filter(delivery__endpoint_id=dead_id)
        ]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT extract(epoch FROM a.at - o.created_at)"
            " FROM webhooks_deliveryattempt a"
            " JOIN webhooks_delivery d ON d.id = a.delivery_id"
            " JOIN webhooks_outboundmessage m ON m.id = d.message_id"
            " JOIN outbox_outboxmessage o ON o.id = m.source_id"
            " WHERE a.succeeded AND d.endpoint_id = ANY(%s)",
            [healthy],
        )
        latencies = [float(row[0]) for row in cur.fetchall()]
    ids = receiver.ids(prefix)
    assert len(latencies) == expected, f"{len(latencies)} successful healthy attempts, expected {expected}"
    assert len(set(ids)) == events, f"healthy receiver saw {len(set(ids))} distinct webhook-ids, expected {events}"
    return {
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "max": max(latencies),
        "delivered": len(latencies),
        "received": len(ids),
        "dead_attempts": len(dead_spans),
        "dead_concurrent": _max_concurrent(dead_spans),
        "failed": _failed_jobs(),
    }


def run() -> None:
    from django.conf import settings

    # Loopback receivers: both settings are required, here and in the subprocesses.
    os.environ["OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
    os.environ["OUTBOUND_WEBHOOK_REQUIRE_HTTPS"] = "false"
    settings.OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.OUTBOUND_WEBHOOK_REQUIRE_HTTPS = False

    slow = _Receiver(SLOW)
    plain, size = _plain_loop(slow)
    runs = [(in_flight, _throughput(slow, in_flight)) for in_flight in (1, 4)]
    rows = [["plain sequential http.client loop", f"{PLAIN:,}", "", f"{plain:,.1f}", "1.00x", "", ""]]
    rows += [
        [
            f"relay + {WORKERS} workers, in-flight {in_flight}",
            f"{MESSAGES:,}",
            f"{r['seconds']:.1f}",
            f"{r['rate']:,.1f}",
            f"{r['rate'] / plain:.2f}x",
            f"{r['attempts']:,}",
            f"{r['failed']:.0f}",
        ]
        for in_flight, r in runs
    ]
    table(
        f"Outbound webhook throughput: one endpoint answering 200 after {SLOW * 1000:.0f} ms, {size}-byte bodies;"
        " time = first outbox message created -> last successful attempt",
        ["sender", "deliveries", "seconds", "per s", "vs plain loop", "attempts", "failed jobs"],
        rows,
    )
    slow.server.shutdown()

    fast = _Receiver(0.0)
    dead = _BlackHole()
    try:
        results = [("healthy only", _isolation(fast, None)), ("+ 1 dead endpoint", _isolation(fast, dead))]
    finally:
        dead.close()
        fast.server.shutdown()
    base = results[0][1]["p95"]
    table(
        f"Isolation: {HEALTHY} healthy endpoints (+ 1 that never answers; read timeout"
        f" {settings.OUTBOUND_WEBHOOK_READ_TIMEOUT:g} s), one tenant, {RATE:g} events/s for {WINDOW:g} s,"
        f" in-flight 1, {WORKERS} workers; latency = outbox message created -> successful attempt",
        [
            "endpoints",
            "healthy deliveries",
            "received",
            "p50 ms",
            "p95 ms",
            "max ms",
            "p95 vs healthy only",
            "dead attempts",
            "dead max at once",
            "failed jobs",
        ],
        [
            [
                name,
                f"{r['delivered']:,}",
                f"{r['received']:,}",
                f"{r['p50'] * 1000:,.0f}",
                f"{r['p95'] * 1000:,.0f}",
                f"{r['max'] * 1000:,.0f}",
                f"{r['p95'] / base:.2f}x",
                f"{r['dead_attempts']}",
                f"{r['dead_concurrent']}",
                f"{r['failed']}",
            ]
            for name, r in results
        ],
    )
    dead_p95 = results[1][1]["p95"]
    if dead_p95 >= GOAL_P95:
        raise SystemExit(
            f"healthy p95 with a dead endpoint: {dead_p95:.2f} s, required under {GOAL_P95:g} s"
            f" (without it: {base:.2f} s)"
        )
