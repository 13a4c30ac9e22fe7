from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from redis import Redis

from outbox.models import OutboxMessage
from queueing.jobs import heartbeat
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, start_worker, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def command(*args: str) -> tuple[int, str]:
    """Run a management command; (exit status, stdout + the error's message)."""
    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def line(output: str, check: str) -> str:
    return next(row for row in output.splitlines() if row.split(" ", 1)[0] == check)


def test_it_fails_without_live_workers_and_says_why(redis_conn: Redis, settings) -> None:  # type: ignore[no-untyped-def]
    settings.QUEUE_ALERT_FAILURE_MIN_JOBS = 2
    jobs.tenant_job.dispatch(1, "a")
    jobs.tenant_job.dispatch(1, "b")
    assert run_worker("default", "--burst").returncode == 0  # gone when it ends

    status, output = command("queue_health")
    assert status == 1
    assert line(output, "redis").endswith("ok (PING answered)")
    assert line(output, "postgresql").endswith("ok (SELECT 1 answered)")
    assert "FAIL: no live worker consumes queue high" in line(output, "workers:high")
    assert "FAIL: no live worker consumes queue default" in line(output, "workers:default")
    assert "FAIL: 2 of 2 attempt(s) on queue default failed" in line(output, "failure_rate:default")
    assert " ok (" in line(output, "failure_rate:high")
    assert " ok (" in line(output, "status:outbox")
    assert "FAIL: no heartbeat ever recorded on queue default" in line(output, "status:health")
    assert "health check(s) failed: workers:high, workers:default, failure_rate:default, status:health" in output


def test_it_passes_with_a_live_worker_on_every_queue_and_fails_on_a_stuck_outbox(
    redis_conn: Redis, workers: list[subprocess.Popen[str]]
) -> None:
    workers.append(start_worker("high", "default", "--sleep", "0.2"))
    for queue in ("default", "high"):  # the scheduler's heartbeats
        heartbeat.on_queue(queue).dispatch(queue)
    wait_for(lambda: command("queue_health")[0] == 0, timeout=60)
    status, output = command("queue_health")
    assert "1 live worker(s)" in line(output, "workers:high")
    assert output.rstrip().endswith("health checks passed.")

    status, output = command("queue_health", "--json")
    assert status == 0 and json.loads(output)["ok"] is True

    OutboxMessage.objects.create(
        event_type="test.stuck",
        aggregate_type="test",
        aggregate_id="1",
        available_at=timezone.now() - timedelta(minutes=10),
    )
    status, output = command("queue_health")
    assert status == 1
    assert "FAIL: 1 outbox message(s) stuck (see outbox_coroner)" in line(output, "status:outbox")
    assert "oldest pending outbox message waited" in line(output, "status:outbox")
    assert output.endswith("health check(s) failed: status:outbox")

    status, output = command("queue_health", "--json", "--verbosity", "0")
    report, _ = json.JSONDecoder().raw_decode(output)  # the error message follows the JSON
    assert report["ok"] is False
    assert [c["check"] for c in report["checks"] if not c["ok"]] == ["status:outbox"]


def test_queue_monitor_exit_status_follows_the_limits(redis_conn: Redis) -> None:
    jobs.record.dispatch_many([(f"r{n}",) for n in range(3)])
    status, output = command("queue_monitor", "default:2", "high:100")
    assert status == 1
    assert line(output, "default").split() == ["default", "3", "job(s)", "limit", "2", "OVER"]
    assert line(output, "high").split()[-1] == "ok"
    assert output.endswith("1 queue(s) over their limit: default")
    assert command("queue_monitor", "default:3")[0] == 0  # "over" means more than the limit
    status, output = command("queue_monitor")  # every queue against QUEUE_ALERT_DEPTH (1000)
    assert status == 0 and "limit     1000" in output


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["default:abc"], "malformed limit 'default:abc': expected QUEUE:MAX_JOBS"),
        (["default"], "malformed limit 'default'"),
        (["default:-5"], "malformed limit 'default:-5'"),
        (["low:10"], "unknown queue 'low'; configured: high, default"),
        (["default:1", "default:2"], "queue 'default' given twice"),
    ],
)
def test_queue_monitor_malformed_arguments_are_usage_errors(redis_conn: Redis, args: list[str], error: str) -> None:
    status, output = command("queue_monitor", *args)
    assert status == 2
    assert error in output and "usage: queue_monitor" in output


def test_queue_monitor_exits_2_from_the_command_line(redis_conn: Redis) -> None:
    proc = subprocess.run(
        [sys.executable, "manage.py", "queue_monitor", "default:abc"],
        env=worker_env(),
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "malformed limit 'default:abc'" in proc.stderr


def test_queue_monitor_notify_emails_once_per_cool_down(redis_conn: Redis, settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.QUEUE_ALERT_EMAILS = ["ops@example.com"]
    jobs.record.dispatch_many([(f"r{n}",) for n in range(3)])
    status, output = command("queue_monitor", "default:2", "--notify")
    assert status == 1 and "notified: firing monitor_depth:default" in output
    assert command("queue_monitor", "default:2", "--notify")[0] == 1
    assert [m.subject for m in mail.outbox] == [
        "[Vito] FIRING monitor_depth:default: queue default has 3 job(s) waiting (limit 2)"
    ]
    # Another queue's run resolves nothing it did not check.
    assert command("queue_monitor", "high:2", "--notify")[0] == 0
    assert len(mail.outbox) == 1
    assert command("queue_monitor", "default:10", "--notify")[0] == 0
    assert mail.outbox[-1].subject.startswith("[Vito] RESOLVED monitor_depth:default:")
