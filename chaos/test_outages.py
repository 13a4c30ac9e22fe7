"""Store outages under load: Redis restarted empty, Redis away for a minute,
PostgreSQL restarted.

The load is real: signed payment webhooks sent to gunicorn from a background
thread (each pays its own order), and ``chaos.tally`` outbox messages (each
adds 1 to its own product's stock) worked off by two workers through the relay.
Afterwards the end state is counted: a product at stock 0 is a lost effect,
above 1 an effect done twice; every webhook answered 200 must be stored once,
processed, and its order paid by exactly one payment.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from standardwebhooks.webhooks import Webhook

from chaos import effects
from chaos.cluster import Cluster, Proc, Web, wait_for
from chaos.services import Services
from orders.models import Order, Payment
from tenants.models import Tenant
from tests.factories import OrderFactory, TenantFactory
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK_PATH = "/api/webhooks/payments/"
AMOUNT = Decimal("12.50")


# --------------------------------------------------------------------------- load


@dataclass
class Sent:
    event_id: str
    order_id: int
    status: int  # 0: no HTTP answer (connection refused, timeout)
    at: float  # time.monotonic() when the answer came


def _signed(order_id: int, event_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "type": "payment.succeeded",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"order_id": order_id, "amount": str(AMOUNT), "currency": "USD"},
        }
    ).encode()
    stamp = datetime.now(UTC)
    secret = settings.PAYMENT_WEBHOOK_SECRET.split()[0]
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=stamp, data=body.decode())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }
    return body, headers


def _send(web: Web, order_id: int, event_id: str, timeout: float = 10) -> Sent:
    body, headers = _signed(order_id, event_id)
    try:
        status, _ = web.request("POST", WEBHOOK_PATH, body=body, headers=headers, timeout=timeout)
    except OSError:
        status = 0
    return Sent(event_id, order_id, status, time.monotonic())


@dataclass
class WebhookLoad:
    """One signed webhook every ``interval`` s, one order each, until ``stop()``
    (or the orders or ``max_seconds`` run out); every answer is kept."""

    web: Web
    order_ids: list[int]
    interval: float
    max_seconds: float
    sent: list[Sent] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> WebhookLoad:
        self._thread = threading.Thread(target=self._run, name="webhook-load", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for order_id in self.order_ids:
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            self.sent.append(_send(self.web, order_id, f"msg_{uuid.uuid4().hex}"))
            self._stop.wait(self.interval)

    def stop(self) -> list[Sent]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return list(self.sent)


def _orders(tenant: Tenant, n: int) -> list[int]:
    return [o.pk for o in OrderFactory.create_batch(n, tenant=tenant, total=AMOUNT, currency="USD")]


@dataclass
class WebhookOutcome:
    accepted: int  # answered 200
    unstored: list[str]  # answered 200 but no event row: a lie to the provider
    stored_twice: int
    unprocessed: int  # stored but not (yet) processed
    unpaid: int  # accepted, yet its order is not paid
    paid_twice: int  # more than one payment recorded for one order


def _webhook_outcome(sent: list[Sent]) -> WebhookOutcome:
    accepted = [s for s in sent if s.status == 200]
    ids = [s.event_id for s in accepted]
    rows = Counter(
        WebhookEvent.objects.filter(provider="standard", event_id__in=ids).values_list("event_id", flat=True)
    )
    orders = [s.order_id for s in accepted]
    payments = Counter(Payment.objects.filter(order_id__in=orders).values_list("order_id", flat=True))
    return WebhookOutcome(
        accepted=len(accepted),
        unstored=[i for i in ids if not rows[i]],
        stored_twice=sum(n > 1 for n in rows.values()),
        unprocessed=WebhookEvent.objects.filter(event_id__in=ids).exclude(status=WebhookEvent.Status.PROCESSED).count(),
        unpaid=Order.objects.filter(pk__in=orders).exclude(status=Order.Status.PAID).count(),
        paid_twice=sum(n > 1 for n in payments.values()),
    )


def _webhooks_done(sent: list[Sent]) -> bool:
    outcome = _webhook_outcome(sent)
    return outcome.unprocessed == 0 and outcome.unpaid == 0


def _resent_by_relay(procs: list[Proc], timeout: float = 60) -> int:
    """What the running relay sent again once it noticed that Redis lost its
    data (its sentinel key was gone), read from its log; nobody runs the
    coroner by hand."""
    relay = next(p for p in procs if p.name == "relay")
    pattern = re.compile(r"Redis lost its data; (\d+) message\(s\) sent again")
    found = wait_for(lambda: pattern.findall(relay.output()), timeout=timeout, step=0.5)
    return sum(int(n) for n in found)


def _start(cluster: Cluster) -> tuple[Web, list[Proc]]:
    """Workers, relay and scheduler first: they boot while gunicorn does."""
    procs = [cluster.worker("high", "default"), cluster.worker("default"), cluster.relay(), cluster.scheduler()]
    web = cluster.web()
    return web, [*procs, web.proc]


def _assert_alive(procs: list[Proc]) -> None:
    dead = [p for p in procs if not p.alive()]
    assert not dead, "\n\n".join(f"{p.name} exited:\n{p.output()[-3000:]}" for p in dead)


# --------------------------------------------------------------------------- scenarios


def _failed_attempts(procs: list[Proc]) -> int:
    """Job attempts the workers saw fail (each logs "attempt N failed")."""
    return sum(len(re.findall(r"attempt \d+ failed", p.output())) for p in procs if p.name == "worker")


@pytest.mark.fast
def test_redis_restarted_empty_quick(cluster: Cluster, services: Services, record) -> None:  # type: ignore[no-untyped-def]
    """The CI-sized cut of the next scenario: one worker and the relay, no web."""
    products = effects.products(60, TenantFactory.create())
    procs = [cluster.worker("default"), cluster.relay()]
    effects.publish_tallies(products, sleep=0.05 * cluster.concurrency)  # a backlog at 8 in flight too
    wait_for(lambda: effects.some_done(products, 5), timeout=60)
    services.restart_redis()
    restarted = time.monotonic()
    resent = _resent_by_relay(procs)
    wait_for(lambda: effects.done(products), timeout=60, step=0.2)
    recovered = time.monotonic() - restarted
    lost, twice = effects.tally(products)
    record(
        "Redis restarted empty, quick (CI cut)",
        load=f"{len(products)} outbox tallies, 1 worker, relay",
        fault=f"restart_redis() mid-flight; the relay saw it and sent {resent} again",
        lost=lost,
        duplicated=twice,
        recovered=recovered,
    )
    _assert_alive(procs)
    assert resent > 0
    assert (lost, twice) == (0, 0)


def test_redis_restarted_empty_under_load(cluster: Cluster, services: Services, record) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory.create()
    products = effects.products(200, tenant)
    orders = _orders(tenant, 300)
    web, procs = _start(cluster)
    effects.publish_tallies(products, sleep=0.05 * cluster.concurrency)  # a backlog at 8 in flight too
    # Mid-flight: some effects done, most still queued or running.
    wait_for(lambda: effects.some_done(products, 20), timeout=90)
    load = WebhookLoad(web, orders, interval=0.05, max_seconds=60).start()
    time.sleep(1)
    services.restart_redis()
    restarted = time.monotonic()
    resent = _resent_by_relay(procs)
    time.sleep(max(0.0, 5 - (time.monotonic() - restarted)))  # webhooks keep coming after the restart
    sent = load.stop()
    wait_for(lambda: effects.done(products) and _webhooks_done(sent), timeout=90, step=0.5)
    recovered = time.monotonic() - restarted
    lost, twice = effects.tally(products)
    hooks = _webhook_outcome(sent)
    statuses = Counter(s.status for s in sent)
    record(
        "Redis restarted empty (kill -9, persistence off)",
        load=f"{len(products)} outbox tallies + {len(sent)} signed webhooks, 2 workers, relay, scheduler",
        fault=f"restart_redis() mid-flight; the relay saw it and sent {resent} again",
        lost=lost + hooks.unpaid,
        duplicated=twice + hooks.paid_twice + hooks.stored_twice,
        recovered=recovered,
    )
    _assert_alive(procs)  # nobody restarted anything: they reconnected
    assert resent > 0  # the restart did lose queued work
    assert statuses == {200: len(sent)}, statuses  # intake needs PostgreSQL only
    assert (lost, twice) == (0, 0)
    assert hooks == WebhookOutcome(len(sent), [], 0, 0, 0, 0)


def test_redis_unreachable_for_a_minute(cluster: Cluster, services: Services, record) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory.create()
    products = effects.products(100, tenant)
    during = effects.products(30, tenant)  # published while Redis is away
    orders = _orders(tenant, 320)
    web, procs = _start(cluster)
    # Longer jobs with more in flight: a backlog is still queued when Redis goes.
    effects.publish_tallies(products, sleep=0.05 * cluster.concurrency)
    wait_for(lambda: effects.some_done(products, 10), timeout=90)
    load = WebhookLoad(web, orders, interval=0.3, max_seconds=120).start()
    time.sleep(1)
    services.stop_redis()
    stopped = time.monotonic()
    time.sleep(20)
    effects.publish_tallies(during, sleep=0)  # work committed now waits in PostgreSQL
    health, _ = web.request("GET", "/healthz", timeout=5)
    time.sleep(max(0.0, 60 - (time.monotonic() - stopped)))
    in_outage = [s for s in load.sent if s.at >= stopped]
    _assert_alive(procs)  # a minute without Redis killed nobody
    services.start_redis()  # empty: persistence is off, what was queued is gone
    started = time.monotonic()
    resent = _resent_by_relay(procs)
    time.sleep(max(0.0, 5 - (time.monotonic() - started)))
    sent = load.stop()
    everything = products + during
    wait_for(lambda: effects.done(everything) and _webhooks_done(sent), timeout=90, step=0.5)
    recovered = time.monotonic() - started
    lost, twice = effects.tally(everything)
    hooks = _webhook_outcome(sent)
    statuses = Counter(s.status for s in sent)
    record(
        "Redis unreachable for 60 s",
        load=f"{len(everything)} outbox tallies ({len(during)} published during) + {len(sent)} signed webhooks "
        f"({len(in_outage)} during)",
        fault=f"stop_redis(), 60 s, start_redis() (empty); the relay saw it and sent {resent} again",
        lost=lost + hooks.unpaid,
        duplicated=twice + hooks.paid_twice + hooks.stored_twice,
        recovered=recovered,
    )
    _assert_alive(procs)
    assert resent > 0  # the queues came back empty: work was lost and sent again
    assert health == 200
    assert in_outage and {s.status for s in in_outage} == {200}
    assert statuses == {200: len(sent)}, statuses
    assert (lost, twice) == (0, 0)
    assert hooks == WebhookOutcome(len(sent), [], 0, 0, 0, 0)


def _api_probe(web: Web) -> tuple[int, str | None]:
    """A tenant API call (token auth reads PostgreSQL): status and Retry-After."""
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        conn.request("GET", "/api/exports/", headers={"Authorization": "Token " + "0" * 40})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    except OSError:
        return 0, None
    finally:
        conn.close()


def test_postgres_restarted_under_load(cluster: Cluster, services: Services, record) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory.create()
    products = effects.products(60, tenant)
    orders = _orders(tenant, 400)
    web, procs = _start(cluster)
    effects.publish_tallies(products, sleep=0.2)  # two workers: ~6 s of jobs, some cut mid-transaction
    wait_for(lambda: effects.some_done(products, 5), timeout=90)
    load = WebhookLoad(web, orders, interval=0.05, max_seconds=60).start()
    time.sleep(1)
    connection.close()
    restart = threading.Thread(target=services.restart_postgres, kwargs={"down_for": 5})
    cut = time.monotonic()
    restart.start()
    wait_for(lambda: not services.postgres_up(), timeout=30, step=0.05)
    probes: list[tuple[int, str | None]] = []
    health: list[int] = []
    while not services.postgres_up() and time.monotonic() - cut < 30:
        probes.append(_api_probe(web))
        health.append(web.request("GET", "/healthz", timeout=5)[0])
        time.sleep(0.5)
    restart.join(timeout=60)
    back = time.monotonic()
    time.sleep(3)  # and a little load after it is back
    sent = load.stop()
    connection.close()
    # The provider retries what we did not accept (same event id, fresh signature).
    retried = [_send(web, s.order_id, s.event_id) for s in sent if s.status != 200]
    final = [s for s in sent if s.status == 200] + retried
    wait_for(lambda: effects.done(products) and _webhooks_done(final), timeout=120, step=0.5)
    recovered = time.monotonic() - back
    lost, twice = effects.tally(products)
    hooks = _webhook_outcome(final)
    statuses = Counter(s.status for s in sent)
    failed_attempts = _failed_attempts(procs)
    record(
        "PostgreSQL restarted (down 5 s)",
        load=f"{len(products)} outbox tallies of 0.2 s + {len(sent)} signed webhooks "
        f"({statuses[200]} × 200, {statuses[503]} × 503 then retried by the sender)",
        fault=f"restart_postgres(down_for=5) mid-flight; {failed_attempts} job attempt(s) failed and retried",
        lost=lost + hooks.unpaid,
        duplicated=twice + hooks.paid_twice + hooks.stored_twice,
        recovered=recovered,
    )
    _assert_alive(procs)  # web, workers, relay, scheduler reconnected by themselves
    assert set(statuses) <= {200, 503}, statuses  # never a 500, never a hang
    assert statuses[503] > 0  # the load did meet the outage
    assert {s.status for s in retried} <= {200}
    assert (lost, twice) == (0, 0)
    # Every 200 (before, during, after, retried) was stored once and paid its order once.
    assert hooks == WebhookOutcome(len(sent), [], 0, 0, 0, 0)
    # The whole site: a database error is a 503 that says when to come back; liveness stays up.
    # (A probe that lands just as PostgreSQL is back gets the bad token's 401.)
    assert (503, "5") in probes and set(probes) <= {(503, "5"), (401, None)}, probes
    assert set(health) == {200}
    # Workers wait for the database instead of failing every queued job in turn.
    assert failed_attempts <= 6, failed_attempts


def _timed(
    web: Web, path: str, *, method: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, float]:
    """(status, seconds) of one request; status 0 when no answer came within 30 s."""
    started = time.monotonic()
    try:
        status, _ = web.request(method, path, body=body, headers=headers, timeout=30)
    except OSError:
        status = 0
    return status, time.monotonic() - started


def _operator_cookie() -> str:
    """A logged-in superuser's session cookie (the dashboard needs one)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from tests.factories import UserFactory

    user = UserFactory.create(is_staff=True, is_superuser=True)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def test_redis_hung_by_sigstop(cluster: Cluster, services: Services, record) -> None:  # type: ignore[no-untyped-def]
    """A hung Redis (SIGSTOP: the port accepts, nothing answers) must not hang
    the web: every Redis connection has a read timeout (REDIS_SOCKET_TIMEOUT)."""
    tenant = TenantFactory.create()
    during = effects.products(30, tenant)  # published while Redis is stopped
    orders = _orders(tenant, 5)
    web, procs = _start(cluster)
    cookie = {"Cookie": _operator_cookie(), "Accept": "text/html"}
    assert _timed(web, "/admin/queues/", headers=cookie)[0] == 200
    limit = settings.REDIS_SOCKET_TIMEOUT + settings.REDIS_CONNECT_TIMEOUT + 5  # a retry of redis-py's, and slack

    services.pause_redis()
    stopped = time.monotonic()
    try:
        effects.publish_tallies(during, sleep=0)  # committed work waits in PostgreSQL
        hook_body, hook_headers = _signed(orders[0], "evt_hung_1")
        answers = {
            "pixel": _timed(web, f"/t/{tenant.slug}/pixel.gif"),
            "webhook": _timed(web, WEBHOOK_PATH, method="POST", body=hook_body, headers=hook_headers),
            "dashboard": _timed(web, "/admin/queues/", headers=cookie),
            "admin": _timed(web, "/admin/", headers=cookie),
            "healthz": _timed(web, "/healthz"),
        }  # fmt: skip
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))  # workers and relay meet the hang too
        _assert_alive(procs)
    finally:
        services.resume_redis()
    resumed = time.monotonic()
    wait_for(lambda: effects.done(during) and _timed(web, "/admin/queues/", headers=cookie)[0] == 200, timeout=90,
             step=0.5)  # fmt: skip
    recovered = time.monotonic() - resumed
    lost, twice = effects.tally(during)
    slowest = max(seconds for _, seconds in answers.values())
    record(
        "Redis hung (SIGSTOP) for 20 s",
        load=f"pixel, signed webhook, dashboard, admin, /healthz during the hang; {len(during)} outbox tallies",
        fault=f"SIGSTOP redis-server, 20 s, SIGCONT; slowest answer {slowest:.1f} s "
        f"({', '.join(f'{name} {status}' for name, (status, _) in answers.items())})",
        lost=lost,
        duplicated=twice,
        recovered=recovered,
    )
    assert {name: status for name, (status, _) in answers.items()} == {
        "pixel": 200,  # served uncounted
        "webhook": 200,  # intake needs PostgreSQL only
        "dashboard": 503,  # it reads Redis: "temporarily unavailable", Retry-After
        "admin": 200,
        "healthz": 200,
    }, answers
    assert slowest < limit, answers
    _assert_alive(procs)  # nobody restarted anything
    assert (lost, twice) == (0, 0)
