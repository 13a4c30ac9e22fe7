"""Heartbeats and probes (queueing/heartbeat.py): run inside real workers, and
every failing path — a stale or missing heartbeat, a failed probe, a smoke
probe that never runs — reaches the alert (with its resolved notice), the
dashboard and ``queue_health``."""

from __future__ import annotations

import socket
import time
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from redis import Redis

from queueing import heartbeat, keys
from queueing.alerts import check_alerts
from queueing.jobs import heartbeat as heartbeat_job
from queueing.jobs import smoke_test
from tests.factories import UserFactory
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _operators(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.QUEUE_ALERT_EMAILS = ["ops@example.com"]


def _beat_everywhere(redis_conn: Redis | None = None) -> None:
    """The scheduler's heartbeat entries, run by a real worker on each queue
    (a new minute: the external probes' turn is free again)."""
    if redis_conn is not None:
        redis_conn.delete(keys.HEARTBEAT_EXTERNAL)
    for queue in ("default", "high"):
        heartbeat_job.on_queue(queue).dispatch(queue)
    assert run_worker("high", "default", "--burst").returncode == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("queue_health", stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def _line(output: str, check: str) -> str:
    return next(row for row in output.splitlines() if row.split(" ", 1)[0] == check)


def test_a_heartbeat_probes_postgresql_and_redis_from_inside_the_worker(redis_conn: Redis) -> None:
    _beat_everywhere()
    beats = heartbeat.read(redis_conn)
    assert set(beats) == {"default", "high"}
    assert all(b.at is not None and time.time() - b.at < 60 and b.failures == {} for b in beats.values())
    raw = redis_conn.hget(keys.HEARTBEAT_PROBES, "default")
    assert raw is not None and b'"postgresql": ""' in raw and b'"redis": ""' in raw
    assert b'"smtp"' not in raw  # e-mail is not SMTP here: nothing to probe
    report = heartbeat.status_report(redis_conn)
    assert report.problems == []
    assert set(report.figures) == {"heartbeat_default_seconds", "heartbeat_high_seconds", "probes_failing"}


def test_a_missing_or_stale_heartbeat_fails_health_and_alerts_until_beats_resume(redis_conn: Redis) -> None:
    report = heartbeat.status_report(redis_conn)
    assert [p.split(":")[0] for p in report.problems] == [
        "no heartbeat ever recorded on queue default",
        "no heartbeat ever recorded on queue high",
    ]

    heartbeat.record(redis_conn, "default", {"postgresql": "", "redis": ""}, at=time.time() - 300)
    heartbeat.record(redis_conn, "high", {"postgresql": "", "redis": ""})
    (problem,) = heartbeat.status_report(redis_conn).problems
    assert problem.startswith("no heartbeat on queue default for 30") and "(one every 60s expected)" in problem

    status, output = _health()
    assert status == 1
    assert "FAIL: no heartbeat on queue default" in _line(output, "status:health")
    assert "health check(s) failed:" in output and "status:health" in output

    assert "status:health" in check_alerts(redis_conn)
    (firing,) = [m for m in mail.outbox if "] FIRING status:health:" in m.subject]
    assert "no heartbeat on queue default" in firing.subject

    _beat_everywhere()
    assert "status:health" not in check_alerts(redis_conn)
    about_health = [m.subject for m in mail.outbox if " status:health:" in m.subject]
    assert [s.split(" status:health:")[0] for s in about_health] == ["[Vito] FIRING", "[Vito] RESOLVED"]


def test_a_failing_smtp_probe_names_itself_and_resolves_when_smtp_answers(
    redis_conn: Redis, monkeypatch: pytest.MonkeyPatch, smtp_server: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # alerts here; workers use EMAIL_URL
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{_closed_port()}")
    _beat_everywhere(redis_conn)
    (problem,) = heartbeat.status_report(redis_conn).problems
    assert problem.startswith("smtp failed in the latest heartbeat on queue ")
    assert ": ConnectionRefusedError" in problem
    # External providers are probed once a minute, by whichever heartbeat comes first.
    assert heartbeat.status_report(redis_conn).figures["probes_failing"] == 1

    status, output = _health()
    assert status == 1 and "smtp failed in the latest heartbeat" in _line(output, "status:health")
    assert "status:health" in check_alerts(redis_conn)

    monkeypatch.setenv("EMAIL_URL", smtp_server.url)  # a real SMTP server answers
    _beat_everywhere(redis_conn)
    raw = [value for value in redis_conn.hvals(keys.HEARTBEAT_PROBES) if isinstance(value, bytes)]
    assert any(b'"smtp": ""' in value for value in raw)
    assert heartbeat.status_report(redis_conn).problems == []
    assert "status:health" not in check_alerts(redis_conn)
    assert any("] RESOLVED status:health:" in m.subject for m in mail.outbox)


def test_a_smoke_probe_that_never_runs_is_a_problem_once_its_grace_is_over(redis_conn: Redis) -> None:
    _beat_everywhere()
    sent = time.time()
    smoke_test()  # the job's body: probes onto every queue
    assert run_worker("default", "--burst").returncode == 0  # nobody works `high`
    assert heartbeat.status_report(redis_conn, now=sent + 10).problems == []  # still within its grace
    later = heartbeat.status_report(redis_conn, now=sent + heartbeat.SMOKE_GRACE + 5).problems
    (late_probe,) = [p for p in later if p.startswith("smoke probe")]
    assert late_probe.startswith("smoke probe sent to queue high 12")
    assert late_probe.endswith("s ago has not run (a job put on high does not come out)")

    assert run_worker("high", "--burst").returncode == 0
    late = heartbeat.status_report(redis_conn, now=time.time() + heartbeat.SMOKE_GRACE + 5).problems
    assert not [p for p in late if p.startswith("smoke probe")]
    assert smoke_test() == {"default": "ok", "high": "ok"}


def test_the_dashboard_shows_the_heartbeat_panel_and_its_problems(redis_conn: Redis) -> None:
    heartbeat.record(redis_conn, "default", {"postgresql": "", "redis": "", "ai": "AIUnavailable: HTTP 503"})
    heartbeat.record(redis_conn, "high", {"postgresql": "", "redis": ""})
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    html = client.get("/admin/queues/").content.decode()
    assert 'id="panel-health"' in html and "Heartbeats and probes" in html
    assert "ai failed in the latest heartbeat on queue default: AIUnavailable: HTTP 503" in html
