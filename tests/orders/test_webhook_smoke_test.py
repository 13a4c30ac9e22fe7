"""The release checklist's payment webhook smoke test, against a live server."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.models import WebhookEvent

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


def test_it_sends_a_signed_event_that_is_stored_and_ignored(live_server: Any) -> None:
    url = f"{live_server.url}/api/webhooks/payments/"
    status, output = run("--url", url)
    assert status == 0 and "answered 200" in output and '"stored"' in output
    event = WebhookEvent.objects.get()
    assert (event.type, event.status) == ("smoke.test", WebhookEvent.Status.IGNORED)


def test_a_wrong_secret_or_no_server_fails_with_the_answer(live_server: Any) -> None:
    url = f"{live_server.url}/api/webhooks/payments/"
    status, output = run("--url", url, "--secret", OTHER)
    assert status == 1 and "answered 400" in output and "signature verification failed" in output
    status, output = run("--url", "http://127.0.0.1:9/api/webhooks/payments/")
    assert status == 1 and "cannot reach" in output
    assert run("--url", "ftp://example.com/")[0] == 2
    assert not WebhookEvent.objects.exists()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_the_printed_curl_command_works(live_server: Any) -> None:
    status, command = run("--url", f"{live_server.url}/api/webhooks/payments/", "--curl")
    assert status == 0 and command.startswith("curl -fsS -X POST ")
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert '"status":"stored"' in done.stdout.replace(" ", "")
    assert WebhookEvent.objects.filter(type="smoke.test").count() == 1
