"""Campaign e-mail over a slow SMTP server: a connection per message against
one kept open per worker thread (lib.mail.send), in the same run.

BENCH_SMTP_RECIPIENTS (default 10,000) subscribers get two campaigns, each
through its own local SMTP server (aiosmtpd, tests/lib/smtp_servers.py) that
waits BENCH_SMTP_DELAY seconds (default 0.02) before every reply, the greeting
included, as a distant or busy relay does:

- a connection per message (``EMAIL_REUSE_CONNECTIONS=0``, what Django's
  ``message.send()`` does): connect, EHLO, MAIL, RCPT, DATA, body, QUIT;
- the connection kept (the default): MAIL, RCPT, DATA, body.

For each, BENCH_SMTP_WORKERS (default 8) ``manage.py rqworker <queue>``
processes start and wait, the fan-out (``campaign_fan_out``) queues one
``send_campaign_email`` per recipient, and the run ends when no delivery is
open. BENCH_WORKER_ARGS is split like a shell line and added to every worker's
command (for ``--concurrency 8`` once the worker has it). e-mails/s counts from
the first claim to the last delivery marked sent (Postgres timestamps), so
worker start-up is not in it. The server checks that every recipient got
exactly one e-mail per campaign, and counts the SMTP sessions. A last line
gives the SMTP exchange alone (one thread, no job around it), the ceiling of
the ratio.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.harness import table
from bench.marketing import _tenant_with_subscribers
from tests.lib.smtp_servers import Server, serving


@dataclass
class _Tally(Server):
    """Counts recipients instead of keeping 10,000 parsed messages."""

    received: Counter[str] = field(default_factory=Counter)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.update(envelope.rcpt_tos)
        return "250 OK"


def _start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    import django_rq
    from rq import Worker

    from queueing.topology import physical_queue

    extra = shlex.split(os.environ.get("BENCH_WORKER_ARGS", ""))
    cmd = [sys.executable, "manage.py", "rqworker", physical_queue("notifications"), "-v", "0", *extra]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
    conn = django_rq.get_connection("default")
    deadline = time.monotonic() + 120
    while Worker.count(connection=conn) < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            _stop(procs)
            raise RuntimeError(f"workers did not start: {' '.join(cmd)}")
        time.sleep(0.1)
    return procs


def _cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU of the worker processes so far (Linux /proc)."""
    ticks = 0
    for proc in procs:
        with open(f"/proc/{proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # warm: idle by now, they exit at once
    for proc in procs:
        proc.wait(timeout=60)


def _campaign(tenant_id: int, subject: str) -> int:
    from marketing.models import Campaign

    campaign = Campaign.objects.create(
        tenant_id=tenant_id, subject=subject, body="Hello", status=Campaign.Status.SENDING
    )
    return int(campaign.pk)


@dataclass(frozen=True)
class _Phase:
    sessions: int  # SMTP sessions the server saw
    sent: int
    seconds: float  # first claim to last delivery sent
    cpu: float  # the workers' CPU seconds over the phase

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def _send(tenant_id: int, recipients: int, workers: int, delay: float, reuse: bool) -> _Phase:
    """One campaign through ``workers`` worker processes and a server of its own."""
    from django.db import connection

    from marketing.models import CampaignDelivery
    from marketing.services import OPEN, campaign_fan_out

    with serving(_Tally(delay=delay)) as (server, port):
        env = {
            **os.environ,
            "EMAIL_URL": f"smtp://127.0.0.1:{port}",
            "EMAIL_REUSE_CONNECTIONS": "1" if reuse else "0",
            "CAMPAIGN_RATE_PER_MINUTE": str(10**9),  # the tenant's rate limit is not what is measured
        }
        procs = _start_workers(workers, env)
        cpu_before = _cpu_seconds(procs)
        try:
            campaign_id = _campaign(tenant_id, "reused" if reuse else "per message")
            campaign_fan_out(campaign_id=campaign_id)
            deadline = time.monotonic() + 3600
            still_open = CampaignDelivery.objects.filter(campaign_id=campaign_id, status__in=OPEN)
            while still_open.exists():
                if time.monotonic() > deadline or all(p.poll() is not None for p in procs):
                    raise RuntimeError(f"campaign {campaign_id}: {still_open.count()} deliveries still open")
                time.sleep(0.5)
            cpu = _cpu_seconds(procs) - cpu_before
        finally:
            _stop(procs)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE status = 'sent'), extract(epoch FROM max(sent_at) - min(claimed_at))"
                " FROM marketing_campaigndelivery WHERE campaign_id = %s",
                [campaign_id],
            )
            sent, seconds = cur.fetchone()
        with server.lock:
            received = server.received.copy()
        sessions = server.count("connections")
    expected = {f"reader{n}@example.com" for n in range(1, recipients + 1)}
    assert sent == recipients, (sent, recipients)
    assert set(received) == expected and set(received.values()) == {1}, "a recipient missed or mailed twice"
    return _Phase(sessions, int(sent), float(seconds), cpu)


def _exchange_only(delay: float, count: int = 100) -> tuple[float, float]:
    """Milliseconds per message for the SMTP exchange alone, one thread, no job
    around it: (a connection per message, the connection kept)."""
    from django.core.mail import EmailMessage
    from django.test import override_settings

    from lib import mail

    body = "A line of a campaign e-mail, about as long as its HTML and text parts.\n" * 40
    times = []
    with serving(_Tally(delay=delay)) as (_server, port):
        for reuse in (False, True):
            with override_settings(
                EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=port,
                EMAIL_HOST_USER="",
                EMAIL_HOST_PASSWORD="",
                EMAIL_USE_TLS=False,
                EMAIL_USE_SSL=False,
                EMAIL_REUSE_CONNECTIONS=reuse,
            ):
                started = time.perf_counter()
                for n in range(count):
                    mail.send(EmailMessage("Bench", body, "shop@example.com", [f"reader{n}@example.com"]))
                times.append((time.perf_counter() - started) / count * 1000)
    return times[0], times[1]


def run() -> None:
    recipients = int(os.environ.get("BENCH_SMTP_RECIPIENTS", "10000"))
    workers = int(os.environ.get("BENCH_SMTP_WORKERS", "8"))
    delay = float(os.environ.get("BENCH_SMTP_DELAY", "0.02"))
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    tenant_id = _tenant_with_subscribers(recipients)
    before = _send(tenant_id, recipients, workers, delay, reuse=False)
    after = _send(tenant_id, recipients, workers, delay, reuse=True)
    extra = os.environ.get("BENCH_WORKER_ARGS", "")
    table(
        f"Campaign to {recipients:,} recipients over an SMTP server answering each command after"
        f" {delay * 1000:g} ms: {workers} worker process(es){f' ({extra})' if extra else ''},"
        " each recipient mailed once",
        ["SMTP connection", "sessions", "e-mails", "seconds", "e-mails/s", "vs per message", "worker CPU ms/e-mail"],
        [
            [
                label,
                f"{p.sessions:,}",
                f"{p.sent:,}",
                f"{p.seconds:.1f}",
                f"{p.rate:,.1f}",
                f"{p.rate / before.rate:.2f}x",
                f"{p.cpu * 1000 / p.sent:.1f}",
            ]
            for label, p in (
                ("a new one per message (EMAIL_REUSE_CONNECTIONS=0)", before),
                ("one per worker thread, kept open (lib.mail.send)", after),
            )
        ],
    )
    per_message_ms, kept_ms = _exchange_only(delay)
    print(
        f"(the SMTP exchange alone, one thread, no job around it: {per_message_ms:.1f} ms a message with a new"
        f" connection, {kept_ms:.1f} ms on the kept one, {per_message_ms / kept_ms:.2f}x)"
    )
