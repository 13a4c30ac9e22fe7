"""The queue dashboard driven in headless Chromium: log in through the admin,
see the queues, retry a failed job, pause and continue a queue, and leave a
screenshot in artifacts/ for CI to keep.

Chromium is Debian's ``chromium`` package (installed by `make test`: devops/system-packages), driven by
Playwright's library with ``executable_path``: no browser download. Without
it this test fails, so CI can never pass it silently; VITO_SKIP_BROWSER=1
skips it on a machine that has no browser.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone
from redis import Redis
from rq import Worker

from queueing import control
from queueing.dispatch import get_queue
from queueing.models import AuditEntry, FailedJob, MetricSnapshot
from tests.factories import UserFactory
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"  # UserFactory's
SCREENSHOT = Path(settings.BASE_DIR) / "artifacts" / "dashboard.png"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    problem = "" if path else "no `chromium` on PATH: devops/system-packages test (make test runs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "Playwright is not installed: pip install -r requirements-dev.txt"
    if problem:
        if os.environ.get("VITO_SKIP_BROWSER") == "1":
            pytest.skip(f"VITO_SKIP_BROWSER=1 and {problem}")
        pytest.fail(f"browser test cannot run: {problem} (or set VITO_SKIP_BROWSER=1 to skip it locally)")
    assert path is not None
    return path


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    # Playwright's sync API keeps an asyncio loop running on this thread, and
    # Django refuses ORM calls under a running loop; the test's own checks
    # are plain synchronous code (the served pages run in live_server's thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before pause
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # ORM calls made while Playwright's loop runs get their own connection
            # (Django keys connections by async context); close it here, or the
            # test database cannot be dropped at the end of the run.
            connections.close_all()


def _history() -> None:
    """Two hours of snapshots, so the screenshot shows the charts drawn."""
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=2)
    MetricSnapshot.objects.bulk_create(
        MetricSnapshot(
            period_start=start + timedelta(minutes=5 * i),
            scope="queue",
            name=name,
            jobs=int(40 * scale * (1.2 + math.sin(i / 4))),
            runtime_p95_ms=120 * scale * (1.5 + math.cos(i / 5)),
            wait_p95_ms=30 * scale * (1.1 + math.sin(i / 3)),
        )
        for i in range(24)
        for name, scale in (("default", 1.0), ("high", 0.4))
    )


def test_an_operator_retries_a_failed_job_and_pauses_a_queue(
    redis_conn: Redis, live_server: Any, page: Any, workers: list[subprocess.Popen[str]]
) -> None:
    jobs.always_fails.dispatch("from-the-browser")
    assert run_worker("default", "--burst").returncode == 0
    failed = FailedJob.objects.get()
    admin = UserFactory.create(is_staff=True, is_superuser=True)
    _history()
    workers.append(start_worker("high", "--sleep", "1"))  # a live worker in the table; it leaves `default` alone
    wait_for(lambda: Worker.all(connection=redis_conn), timeout=60)

    page.goto(f"{live_server.url}/admin/queues/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/queues/")

    page.locator("#queue-default").wait_for()
    page.locator("#queue-high").wait_for()
    assert page.locator("#queues tbody tr").count() == 2
    assert page.locator("#workers tbody tr").count() == 1
    assert page.locator("svg.chart polyline").count() >= 6
    # The live part refreshes itself (dashboard.js fetches live/ every 5 s).
    page.wait_for_function("document.getElementById('refresh-state').textContent.startsWith('Updated')")

    page.click(f'tr[data-failed-id="{failed.pk}"] button[data-action="retry-one"]')
    page.get_by_text("Dispatched 1 failed job(s) again.").wait_for()
    assert not FailedJob.objects.exists()
    assert get_queue("default").count == 1
    assert page.locator(f'tr[data-failed-id="{failed.pk}"]').count() == 0

    page.click('#queue-default button[data-action="pause"]')
    page.locator('#queue-default button[data-action="continue"]').wait_for()
    assert control.paused_queues(redis_conn) == {"default"}
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click('#queue-default button[data-action="continue"]')
    page.locator('#queue-default button[data-action="pause"]').wait_for()
    assert control.paused_queues(redis_conn) == set()

    assert list(AuditEntry.objects.order_by("id").values_list("username", "action", "target")) == [
        (admin.username, "retry", f"failed_job:{failed.pk}"),
        (admin.username, "pause", "queue:default"),
        (admin.username, "continue", "queue:default"),
    ]
    assert SCREENSHOT.stat().st_size > 10_000
