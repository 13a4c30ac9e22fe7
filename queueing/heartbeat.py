"""Heartbeats and probes: proof, from inside a worker, that each queue is
consumed and that what its jobs need answers.

Every ``PERIOD`` seconds the scheduler puts ``queueing.jobs.heartbeat`` on
each queue. The job runs the probes — PostgreSQL, Redis, and each external
provider that is configured (SMTP when e-mail goes out over SMTP; others
registered from above with :func:`register_probe`, like the AI provider) — and
records the time and the results in Redis. The smoke test (every 5 minutes)
sends a no-op probe job to every queue.

:func:`status_report` turns that into the ``health`` status provider, so the
existing machinery does the rest: a ``status:health`` alert (e-mailed, with a
resolved notice), a panel on the queue dashboard, ``vito_health_*`` figures in
/metrics, and a failing ``status:health`` line in ``queue_health``. A problem is
any of: a queue whose last heartbeat is older than ``STALE_AFTER`` (or that
never had one), a probe that failed in a queue's latest heartbeat, and a smoke
probe still not run ``SMOKE_GRACE`` seconds after it was sent.
docs/runtime.md, "Heartbeat and smoke test".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection as db_connection
from redis import Redis

from lib.text import as_text
from queueing import keys, selectors
from queueing.dispatch import redis_connection
from queueing.status import StatusReport

log = logging.getLogger(__name__)

PERIOD = 60  # seconds between heartbeats on each queue (config/schedule.py)
# Seconds one external probe may take (a hung SMTP server or AI endpoint): the
# heartbeat job (timeout 60 s) must record its results even when all hang.
PROBE_TIMEOUT = 5.0
STALE_AFTER = 2 * PERIOD  # one missed beat is noise; two are an outage
SMOKE_GRACE = 120  # a probe job waits behind the queue's backlog; the depth/wait alerts cover a long one

# A probe returns a short detail when the provider answers, raises when it does
# not, and returns None when the provider is not configured here (skipped).
Probe = Callable[[], str | None]

_probes: dict[str, Probe] = {}


def register_probe(name: str, probe: Probe) -> None:
    """Add an external provider to the heartbeat (from the owning app's ``AppConfig.ready``).

    External probes run once a minute in all (in whichever queue's heartbeat
    comes first), not once per queue: providers should not see a login per
    queue. A probe must be cheap and take at most ``PROBE_TIMEOUT`` seconds;
    ``name`` appears in alerts ("ai", "smtp"). Its error text is shown to
    operators: no credentials in it.
    """
    _probes[name] = probe


def probe_postgresql() -> str:
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "SELECT 1 answered"


def probe_smtp() -> str | None:
    """Connect, EHLO, STARTTLS/login as configured, QUIT: what every e-mail needs first."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.smtp.EmailBackend":
        return None
    from django.core.mail import get_connection

    smtp = get_connection(fail_silently=False, timeout=PROBE_TIMEOUT)
    smtp.open()
    smtp.close()
    return f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT} accepted a session"


def external_turn(conn: Redis, queue: str) -> bool:
    """Whether this heartbeat runs the external probes: the first of the minute does."""
    return bool(conn.set(keys.HEARTBEAT_EXTERNAL, queue, nx=True, ex=PERIOD - 10))


def run_probes(conn: Redis, *, external: bool = True) -> dict[str, str]:
    """Probe name -> "" when it answered, else what went wrong (one line).
    PostgreSQL and Redis always; the registered external providers if ``external``."""
    results: dict[str, str] = {}
    checks: list[tuple[str, Callable[[], str | None]]] = [
        ("postgresql", probe_postgresql),
        ("redis", lambda: "PING answered" if conn.ping() else None),
        *(sorted(_probes.items()) if external else []),
    ]
    for name, probe in checks:
        try:
            detail = probe()
        except Exception as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            results[name] = f"{type(exc).__name__}: {text}"[:300]
            log.warning("heartbeat probe %s failed: %s", name, results[name])
            continue
        if detail is not None:
            results[name] = ""
    return results


def record(conn: Redis, queue: str, results: dict[str, str], *, at: float | None = None) -> None:
    """One queue's heartbeat: its time (read by /metrics too) and its probes' results."""
    stamp = time.time() if at is None else at
    with conn.pipeline(transaction=False) as pipe:
        pipe.hset(keys.HEARTBEAT, queue, repr(stamp))
        pipe.hset(keys.HEARTBEAT_PROBES, queue, json.dumps({"at": stamp, "results": results}))
        pipe.execute()


@dataclass(frozen=True)
class Beat:
    at: float | None  # None: never
    failures: dict[str, str]  # probe -> error, from the latest heartbeat


def read(conn: Redis) -> dict[str, Beat]:
    """The latest heartbeat of every configured queue."""
    with conn.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.HEARTBEAT)
        pipe.hgetall(keys.HEARTBEAT_PROBES)
        stamps, probes = pipe.execute()
    stamps = {as_text(k): float(v) for k, v in stamps.items()}
    probes = {as_text(k): v for k, v in probes.items()}
    beats: dict[str, Beat] = {}
    for queue in selectors.queue_names():
        failures: dict[str, str] = {}
        raw = probes.get(queue)
        if raw:
            try:
                failures = {k: v for k, v in json.loads(raw)["results"].items() if v}
            except (ValueError, KeyError, TypeError, AttributeError):
                failures = {"heartbeat": "unreadable probe record"}
        beats[queue] = Beat(stamps.get(queue), failures)
    return beats


@dataclass(frozen=True)
class SmokeProbe:
    queue: str
    sent_at: float | None
    ran: bool


def read_smoke(conn: Redis) -> list[SmokeProbe]:
    """The latest smoke probe of every configured queue (queueing.jobs.smoke_test writes them)."""
    raw = {as_text(k): as_text(v) for k, v in conn.hgetall(keys.SMOKE).items()}
    out = []
    for queue in selectors.queue_names():
        token, _, sent = raw.get(f"{queue}:sent", "").partition("@")
        try:
            sent_at: float | None = float(sent) if sent else None
        except ValueError:
            sent_at = None
        out.append(SmokeProbe(queue, sent_at, bool(token) and raw.get(f"{queue}:done") == token))
    return out


def problems(beats: dict[str, Beat], smoke: list[SmokeProbe], *, now: float) -> list[str]:
    out: list[str] = []
    for queue, beat in sorted(beats.items()):
        if beat.at is None:
            out.append(
                f"no heartbeat ever recorded on queue {queue}: is the scheduler (`schedule_work`) running, "
                f"and a worker on {queue}?"
            )
        elif now - beat.at > STALE_AFTER:
            out.append(
                f"no heartbeat on queue {queue} for {now - beat.at:.0f}s (one every {PERIOD}s expected): "
                f"its workers or the scheduler (`schedule_work`) are down"
            )
        for probe, error in sorted(beat.failures.items()):
            out.append(f"{probe} failed in the latest heartbeat on queue {queue}: {error}")
    for sent in smoke:
        if sent.sent_at is not None and not sent.ran and now - sent.sent_at > SMOKE_GRACE:
            out.append(
                f"smoke probe sent to queue {sent.queue} {now - sent.sent_at:.0f}s ago has not run "
                f"(a job put on {sent.queue} does not come out)"
            )
    return out


def status_report(conn: Redis | None = None, *, now: float | None = None) -> StatusReport:
    """The ``health`` status provider (registered in ``QueueingConfig.ready``)."""
    conn = conn or redis_connection()
    at = time.time() if now is None else now
    beats = read(conn)
    figures: dict[str, float] = {
        f"heartbeat_{queue}_seconds": round(max(0.0, at - beat.at), 1)
        for queue, beat in sorted(beats.items())
        if beat.at is not None
    }
    figures["probes_failing"] = float(sum(len(beat.failures) for beat in beats.values()))
    return StatusReport(
        title="Heartbeats and probes",
        figures=figures,
        problems=problems(beats, read_smoke(conn), now=at),
        link="/admin/queues/#panel-health",
    )
