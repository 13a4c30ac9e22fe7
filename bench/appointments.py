"""Appointments (seed 002): Cal.com webhooks end to end, and double booking.

1. BENCH_BOOKINGS (default 10,000) signed ``BOOKING_CREATED`` webhooks —
   distinct bookings, 100 organizers × 100 half-hour slots, each attendee
   with their own phone number — are posted to
   ``/api/webhooks/calendar/<slug>/`` under gunicorn (4 sync workers) from 8
   connections, against ``GET /healthz`` in the same run. A relay
   (``outbox_process --loop``) and two workers (``rqworker high default``)
   run meanwhile and e-mail the confirmations to a local SMTP server.
   Latency is the event's arrival (``WebhookEvent.received_at``) to its
   confirmation's claim, made just before the SMTP hand-over
   (``Notification.at``); p50/p95 over every booking.
2. 10,000 booking attempts on 100 slots of one staff member, 100 per slot,
   shuffled, from 16 threads calling ``appointment_book`` (what every entry
   point calls): exactly 100 appointments must come out.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from bench.harness import percentile, table
from bench.loadgen import gunicorn, raw_request, run_load

BOOKINGS = int(os.environ.get("BENCH_BOOKINGS", "10000"))
ORGANIZERS = 100
ATTEMPTS, SLOTS, THREADS = 10_000, 100, 16


def _signed_bookings(slug: str, count: int) -> list[bytes]:
    from tests.appointments.helpers import cal_event, cal_signed

    base = (datetime.now(UTC) + timedelta(days=7)).replace(hour=8, minute=0, second=0, microsecond=0)
    built = []
    for n in range(count):
        body = cal_event(
            "BOOKING_CREATED",
            uid=f"bench-{n:06d}",
            starts_at=base + timedelta(minutes=30 * (n // ORGANIZERS)),
            organizer_id=1000 + n % ORGANIZERS,
            attendee=f"Guest {n}",
            email=f"guest{n}@example.com",
        ).replace(b"+49 30 1234567", f"+49 30 {2_000_000 + n}".encode())
        headers = {"Content-Type": "application/json", **cal_signed(body)}
        built.append(raw_request("POST", f"/api/webhooks/calendar/{slug}/", body, headers))
    return built


def _latencies() -> list[float]:
    """Seconds from each booking event's arrival to its confirmation's claim."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT extract(epoch FROM n.at - e.received_at)"
            " FROM orders_webhookevent e"
            " JOIN appointments_externalbooking x ON x.uid = e.payload->'payload'->>'uid'"
            " JOIN appointments_notification n ON n.appointment_id = x.appointment_id AND n.kind = 'confirmation'"
            " WHERE e.provider = 'calcom'"
        )
        return [float(row[0]) for row in cur.fetchall()]


def _webhooks_to_confirmations() -> list[list[str]]:
    from appointments.models import Appointment, Notification
    from tests.appointments.helpers import give_secrets
    from tests.factories import TenantFactory
    from tests.mail import Inbox, start

    tenant = TenantFactory.create(slug="bench-salon")
    give_secrets(tenant)
    requests = _signed_bookings(tenant.slug, BOOKINGS)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    inbox = Inbox()
    smtp, smtp_port = start(inbox)
    env = {**os.environ, "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}"}
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    manage = [sys.executable, "manage.py"]
    helpers = [
        subprocess.Popen([*manage, "outbox_process", "--loop", "-v", "0"], **quiet),  # type: ignore[call-overload]
        *(
            subprocess.Popen([*manage, "rqworker", "high", "default", "-v", "0", "--sleep", "1"], **quiet)  # type: ignore[call-overload]
            for _ in range(2)
        ),
    ]
    try:
        with gunicorn({}) as port:
            trivial = run_load(port, [raw_request("GET", "/healthz")], seconds=8)
            started = time.monotonic()
            hooks = run_load(port, iter(requests), seconds=3600)  # an iterator: each request once
            posted = time.monotonic() - started
        deadline = time.monotonic() + 900
        while Notification.objects.filter(kind="confirmation").count() < BOOKINGS and time.monotonic() < deadline:
            time.sleep(1)
        drained = time.monotonic() - started
    finally:
        for proc in helpers:
            proc.terminate()
        for proc in helpers:
            proc.wait(timeout=60)
        smtp.stop()
    booked = Appointment.objects.filter(tenant=tenant, status="booked").count()
    sent = Notification.objects.filter(kind="confirmation", status="sent").count()
    latencies = _latencies()
    print(
        f"(bookings posted: {BOOKINGS:,} in {posted:.1f} s; appointments {booked:,}; confirmations sent {sent:,},"
        f" received by the SMTP server {len(inbox.messages):,}; all done {drained:.0f} s after the first post)"
    )
    assert booked == BOOKINGS and sent == BOOKINGS and len(inbox.messages) == BOOKINGS, (booked, sent)
    return [
        ["GET /healthz (trivial)", f"{trivial[0]:,.0f}", f"{trivial[1]:.1f}", str(trivial[2]), "100%", "", ""],
        [
            "POST /api/webhooks/calendar/<slug>/",
            f"{hooks[0]:,.0f}",
            f"{hooks[1]:.1f}",
            str(hooks[2]),
            f"{hooks[0] / trivial[0]:.0%}",
            f"{percentile(latencies, 0.50):.2f}",
            f"{percentile(latencies, 0.95):.2f}",
        ],
    ]


def _double_booking() -> list[list[str]]:
    from django.db import connection

    from appointments.models import Appointment, StaffMember
    from appointments.services import SlotTaken, appointment_book
    from tests.factories import TenantFactory

    tenant = TenantFactory.create(slug="bench-clinic")
    staff = StaffMember.objects.create(tenant=tenant, name="Dr. Busy")
    base = (datetime.now(UTC) + timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    slots = [base + timedelta(minutes=30 * n) for n in range(SLOTS)]
    attempts = [slots[n % SLOTS] for n in range(ATTEMPTS)]
    random.Random(17).shuffle(attempts)
    cursor = iter(attempts)
    take = threading.Lock()
    counts = {"booked": 0, "taken": 0}

    def attempt_all() -> None:
        mine = {"booked": 0, "taken": 0}
        try:
            while True:
                with take:
                    start = next(cursor, None)
                if start is None:
                    break
                try:
                    appointment_book(
                        tenant_id=tenant.pk, customer=None, customer_name="Caller", customer_email="",
                        service=None, service_name="Check-up", starts_at=start,
                        ends_at=start + timedelta(minutes=30), staff=staff, source=Appointment.Source.API,
                    )  # fmt: skip
                    mine["booked"] += 1
                except SlotTaken:
                    mine["taken"] += 1
        finally:
            connection.close()
            with take:
                for key, value in mine.items():
                    counts[key] += value

    threads = [threading.Thread(target=attempt_all) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    stored = Appointment.objects.filter(staff=staff).count()
    assert stored == SLOTS and counts == {"booked": SLOTS, "taken": ATTEMPTS - SLOTS}, (stored, counts)
    return [[f"{ATTEMPTS:,} attempts, {SLOTS} slots, {THREADS} threads", f"{stored}", f"{counts['taken']:,}",
             f"{ATTEMPTS / elapsed:,.0f}"]]  # fmt: skip


def run() -> None:
    table(
        f"Cal.com webhooks under gunicorn (4 sync workers), {BOOKINGS:,} distinct signed bookings from 8 connections,"
        " relay and 2 workers running; latency = event received -> confirmation handed to SMTP",
        ["endpoint", "req/s", "p99 ms", "non-2xx", "vs trivial view", "p50 s", "p95 s"],
        _webhooks_to_confirmations(),
    )
    table(
        "Concurrent booking attempts through appointment_book (the exclusion constraint decides)",
        ["load", "appointments", "refused (slot taken)", "attempts/s"],
        _double_booking(),
    )
