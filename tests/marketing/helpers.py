"""Shared by the marketing tests: subscribers, campaigns, draining the pipeline."""

from __future__ import annotations

import re
import time
from email.message import EmailMessage
from typing import Any, cast

import pytest
from django.core.management import call_command
from redis import Redis

from marketing.models import Campaign, Subscriber
from queueing.dispatch import get_queue
from tenants.models import Tenant
from tests.queueing.conftest import run_worker


def subscribers(tenant: Tenant, count: int, *, prefix: str = "s", unsubscribed: bool = False) -> list[Subscriber]:
    from django.utils import timezone

    rows = [
        Subscriber(
            tenant=tenant,
            email=f"{prefix}{n}@{tenant.slug}.example.com",
            unsubscribed_at=timezone.now() if unsubscribed else None,
        )
        for n in range(count)
    ]
    return Subscriber.objects.bulk_create(rows)


def campaign(tenant: Tenant, subject: str = "Spring sale", body: str = "Everything -20% <this week>.") -> Campaign:
    return Campaign.objects.create(tenant=tenant, subject=subject, body=body)


def smtp_for_workers(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Worker subprocesses read EMAIL_URL from their environment (the smtp_server
    fixture only configures this process)."""
    monkeypatch.setenv("EMAIL_URL", f"smtp://{settings.EMAIL_HOST}:{settings.EMAIL_PORT}")


def drain(*, relay: bool = True) -> str:
    """Relay the outbox, then run a burst worker on `default` until nothing is due."""
    if relay:
        call_command("outbox_process", verbosity=0)
    worker = run_worker("default", "--burst")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    return worker.stdout + worker.stderr


def fast_forward(conn: Redis, queue: str = "default") -> int:
    """Make every delayed job of ``queue`` (retries, released jobs) due now."""
    key = get_queue(queue).scheduled_job_registry.key
    members = cast(list[bytes], conn.zrange(key, 0, -1))
    if members:
        conn.zadd(key, dict.fromkeys(members, 0.0))
    return len(members)


def scheduled_at(conn: Redis, queue: str = "default") -> list[float]:
    """When each delayed job of ``queue`` comes due (unix time), earliest first."""
    key = get_queue(queue).scheduled_job_registry.key
    pairs = cast(list[tuple[bytes, float]], conn.zrange(key, 0, -1, withscores=True))
    return sorted(score for _member, score in pairs)


def unsubscribe_link(message: EmailMessage) -> str:
    header = str(message["List-Unsubscribe"]).strip()  # long values are folded onto the next line
    found = re.fullmatch(r"<(https?://[^>]+)>", header)
    assert found, header
    return found.group(1)


def fresh_window(seconds_needed: float = 20) -> None:
    """Fixed one-minute rate windows: start a rate test early in one, so it ends in the same one."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.05)
