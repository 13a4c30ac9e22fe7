"""The release checklist's payment webhook smoke test, against a live server."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from redis import Redis

from outbox.models import OutboxMessage
from tests.queueing.conftest import start_worker, wait_for, worker_env
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + "c2VjcmV0LW9sZC1zZWNyZXQtb2xkLXNlY3JldA=="


@pytest.fixture(autouse=True)
def _secret(settings: Any) -> None:
    settings.PAYMENT_WEBHOOK_SECRET = SECRET


def run(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("webhook_smoke_test", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue()


def _relay() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "outbox_process", "--loop", "--max-time", "120"],
        env=worker_env(),
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_it_proves_processing_by_a_worker_and_leaves_no_event_behind(
    live_server: Any, redis_conn: Redis, workers: list[subprocess.Popen[str]]
) -> None:
    workers += [_relay(), start_worker("high", "--sleep", "0.2")]
    status, output = run("--url", f"{live_server.url}/api/webhooks/payments/", "--wait", "60")
    assert status == 0, output
    assert "answered 200" in output and "processed by a worker" in output and "(test event deleted)" in output
    assert not WebhookEvent.objects.exists()
    # Its outbox message went the whole way (and goes with the nightly prune).
    assert list(OutboxMessage.objects.values_list("event_type", "status")) == [
        ("payment.webhook_received", "processed")
    ]


def test_it_says_where_an_unprocessed_event_stopped_and_keeps_it(
    live_server: Any, redis_conn: Redis, workers: list[subprocess.Popen[str]]
) -> None:
    url = f"{live_server.url}/api/webhooks/payments/"
    status, output = run("--url", url, "--wait", "1")
    assert status == 1 and "not processed within 1s" in output and "is `outbox_process --loop` running?" in output

    workers.append(_relay())  # relayed now, but nobody works `high`
    # The relay is up once it has moved the first run's event.
    wait_for(lambda: not OutboxMessage.objects.filter(status="pending").exists(), timeout=60)
    status, output = run("--url", url, "--wait", "3")
    assert status == 1 and "no worker processed it: is a worker on `high` running?" in output
    assert WebhookEvent.objects.filter(type="smoke.test", status=WebhookEvent.Status.RECEIVED).count() == 2

    status, output = run("--url", url, "--no-wait")  # intake only
    assert status == 0 and "processed" not in output


def test_a_wrong_secret_or_no_server_fails_with_the_answer(live_server: Any) -> None:
    url = f"{live_server.url}/api/webhooks/payments/"
    status, output = run("--url", url, "--secret", OTHER)
    assert status == 1 and "answered 400" in output and "signature verification failed" in output
    status, output = run("--url", "http://127.0.0.1:9/api/webhooks/payments/")
    assert status == 1 and "cannot reach" in output
    assert run("--url", "ftp://example.com/")[0] == 2
    assert not WebhookEvent.objects.exists()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_the_printed_curl_command_works(live_server: Any, redis_conn: Redis) -> None:
    status, command = run("--url", f"{live_server.url}/api/webhooks/payments/", "--curl")
    assert status == 0 and command.startswith("curl -fsS -X POST ")
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert '"status":"stored"' in done.stdout.replace(" ", "")
    assert WebhookEvent.objects.filter(type="smoke.test").count() == 1
