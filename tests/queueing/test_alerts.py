from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone
from redis import Redis

from outbox.models import OutboxMessage
from queueing import alerts, control
from queueing.alerts import Condition, check_alerts, process
from queueing.models import AlertEvent
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, start_worker, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _operators(settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.QUEUE_ALERT_EMAILS = ["ops@example.com"]
    settings.QUEUE_ALERT_COOLDOWN = 1800


def mails(key: str, kind: str = "") -> list[str]:
    """Subjects of the e-mails sent about ``key`` (of one kind: FIRING, STILL FIRING, RESOLVED)."""
    subjects = [str(m.subject) for m in mail.outbox]
    return [s for s in subjects if f" {key}:" in s and (not kind or f"] {kind} " in s)]


def events(key: str) -> list[str]:
    return list(AlertEvent.objects.filter(condition=key).order_by("at", "id").values_list("state", flat=True))


def test_it_emails_once_when_a_queue_floods_and_once_when_it_drains(redis_conn: Redis, settings) -> None:  # type: ignore[no-untyped-def]
    settings.QUEUE_ALERT_DEPTH = {"default": 5, "high": 100}
    jobs.record.dispatch_many([(f"r{n}",) for n in range(8)])

    assert "depth:default" in check_alerts(redis_conn)
    assert len(mails("depth:default", "FIRING")) == 1
    message = next(m for m in mail.outbox if " depth:default:" in m.subject)
    assert message.to == ["ops@example.com"]
    assert "queue default has 8 job(s) waiting (limit 5)" in message.body
    assert "Also firing now:" in message.body and "no_worker:default" in message.body
    assert events("depth:default") == ["firing"]

    check_alerts(redis_conn)  # still over, within the cool-down: no second e-mail, no second event
    assert len(mails("depth:default")) == 1
    assert events("depth:default") == ["firing"]

    assert run_worker("default", "--burst").returncode == 0
    assert "depth:default" not in check_alerts(redis_conn)
    assert len(mails("depth:default", "RESOLVED")) == 1
    assert events("depth:default") == ["firing", "resolved"]
    check_alerts(redis_conn)
    assert len(mails("depth:default")) == 2  # one firing, one resolved, nothing more
    assert mails("depth:high") == []


def test_a_still_firing_condition_is_emailed_again_only_after_the_cool_down(redis_conn: Redis, settings) -> None:  # type: ignore[no-untyped-def]
    settings.QUEUE_ALERT_DEPTH = {"default": 0, "high": 100}
    jobs.record.dispatch("waiting")
    check_alerts(redis_conn, now=1_000_000)
    check_alerts(redis_conn, now=1_000_000 + 1799)
    assert len(mails("depth:default")) == 1
    check_alerts(redis_conn, now=1_000_000 + 1800)
    assert mails("depth:default", "STILL FIRING") and len(mails("depth:default")) == 2
    assert events("depth:default") == ["firing"]


def test_a_flapping_condition_mails_once_per_cool_down(redis_conn: Redis) -> None:
    def flap(firing: bool, at: float) -> list[str]:
        cond = Condition("test:flap", firing, 1.0 if firing else 0.0, "flapping" if firing else "fine")
        return [n.kind for n in process(redis_conn, [cond], now=at)]

    assert flap(True, 0) == ["firing"]
    assert flap(False, 60) == ["resolved"]
    assert flap(True, 120) == []  # the last firing e-mail is 120 s old: damped
    assert flap(False, 180) == []  # nobody was told it fired again, so no resolution is owed
    assert flap(True, 240) == []
    assert flap(True, 1800) == ["firing"]  # still firing once the cool-down has passed
    assert flap(False, 1860) == ["resolved"]
    assert len(mails("test:flap")) == 4
    assert events("test:flap") == ["firing", "resolved", "firing", "resolved", "firing", "resolved"]


def test_failure_rate_alerts_only_past_the_minimum_sample(redis_conn: Redis, settings) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        jobs.tenant_job.dispatch(7, f"x{n}")  # fails (one attempt)
    jobs.record.dispatch("fine")
    assert run_worker("default", "--burst").returncode == 0

    settings.QUEUE_ALERT_FAILURE_MIN_JOBS = 20
    conditions = {c.key: c for c in alerts.evaluate(alerts.gather(redis_conn))}
    assert not conditions["failure_rate:default"].firing
    assert "3 of 4 attempt(s)" in conditions["failure_rate:default"].message
    assert "too few to judge" in conditions["failure_rate:default"].message

    settings.QUEUE_ALERT_FAILURE_MIN_JOBS = 4
    assert "failure_rate:default" in check_alerts(redis_conn)
    assert "failure_rate:high" not in check_alerts(redis_conn)
    (subject,) = mails("failure_rate:default", "FIRING")
    assert "3 of 4 attempt(s) on queue default failed in the last 5 minutes (75.0%, limit 5.0%)" in subject
    assert events("failure_rate:default") == ["firing"]


def test_a_queue_without_live_worker_alerts_unless_paused_and_resolves_when_one_starts(
    redis_conn: Redis, workers: list[subprocess.Popen[str]]
) -> None:
    control.queue_pause(redis_conn, "high")
    firing = check_alerts(redis_conn)
    assert "no_worker:default" in firing and "no_worker:high" not in firing  # paused on purpose
    assert len(mails("no_worker:default", "FIRING")) == 1 and mails("no_worker:high") == []
    assert "start `rqworker default`" in mails("no_worker:default")[0]

    control.queue_continue(redis_conn, "high")
    assert "no_worker:high" in check_alerts(redis_conn)
    workers.append(start_worker("high", "default", "--sleep", "0.2"))
    wait_for(lambda: not {"no_worker:high", "no_worker:default"} & set(check_alerts(redis_conn)), timeout=60)
    assert len(mails("no_worker:default", "RESOLVED")) == 1 and len(mails("no_worker:high", "RESOLVED")) == 1
    assert events("no_worker:high") == ["firing", "resolved"]


def test_a_stuck_outbox_raises_its_status_alert(redis_conn: Redis) -> None:
    message = OutboxMessage.objects.create(
        event_type="test.stuck",
        aggregate_type="test",
        aggregate_id="1",
        available_at=timezone.now() - timedelta(minutes=10),
    )
    assert "status:outbox" in check_alerts(redis_conn)
    (subject,) = mails("status:outbox", "FIRING")
    assert "1 outbox message(s) stuck" in subject
    body = next(m.body for m in mail.outbox if " status:outbox:" in m.subject)
    assert "/admin/outbox/outboxmessage/" in body

    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.PROCESSED)
    assert "status:outbox" not in check_alerts(redis_conn)
    assert len(mails("status:outbox", "RESOLVED")) == 1
    assert events("status:outbox") == ["firing", "resolved"]


def test_without_a_list_the_superusers_are_emailed(redis_conn: Redis, settings) -> None:  # type: ignore[no-untyped-def]
    settings.QUEUE_ALERT_EMAILS = []
    assert alerts.recipients() == []
    get_user_model().objects.create_superuser("root", "root@example.com", "pw-not-used-1")
    get_user_model().objects.create_user("staff", "staff@example.com", "pw-not-used-2", is_staff=True)
    assert alerts.recipients() == ["root@example.com"]
    check_alerts(redis_conn)
    assert mails("no_worker:default")
    assert all(m.to == ["root@example.com"] for m in mail.outbox)


def test_the_scheduled_job_runs_the_checks_in_a_worker(redis_conn: Redis) -> None:
    from queueing.jobs import check_alerts as check_alerts_job

    check_alerts_job.on_queue("high").dispatch("high")
    # A worker on `high` only: `default` has no live worker, which the job records.
    assert run_worker("high", "--burst").returncode == 0
    assert events("no_worker:default") == ["firing"]
    assert events("no_worker:high") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("high:100", "{'high': 100, 'default': 1000}"),
        ("default:50, high:5", "{'high': 5, 'default': 50}"),
        ("default:lots", "QUEUE_ALERT_DEPTH: expected queue:number pairs for high, default, got 'default:lots'"),
        ("low:5", "got 'low:5'"),
    ],
)
def test_per_queue_thresholds_come_from_the_environment(value: str, expected: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.QUEUE_ALERT_DEPTH)",
        ],
        env={**worker_env(), "QUEUE_ALERT_DEPTH": value},
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert expected in proc.stdout + proc.stderr
    assert (proc.returncode == 0) == expected.startswith("{")
