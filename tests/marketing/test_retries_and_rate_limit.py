from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from redis import Redis

from marketing.models import Campaign, CampaignDelivery
from marketing.services import campaign_fan_out, campaign_send, delivery_send
from queueing.dispatch import get_queue
from queueing.models import FailedJob
from tests.factories import TenantFactory
from tests.marketing.helpers import (
    campaign,
    drain,
    fast_forward,
    fresh_window,
    scheduled_at,
    smtp_for_workers,
    subscribers,
)

pytestmark = pytest.mark.django_db(transaction=True)
Status = CampaignDelivery.Status


def test_a_refusing_smtp_server_is_retried_then_the_delivery_fails_with_its_error(
    redis_conn: Redis, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    smtp_for_workers(monkeypatch, settings)
    smtp_server.reject = True
    tenant = TenantFactory.create()
    subscribers(tenant, 2)
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    campaign_fan_out(campaign_id=news.pk)

    for attempt, (low, high) in ((1, (60, 66)), (2, (120, 132))):
        started = time.time()
        drain(relay=False)
        ended = time.time()
        rows = list(CampaignDelivery.objects.filter(campaign=news).values_list("status", "attempts", "last_error"))
        assert rows == [(Status.PENDING, attempt, "SMTP 550 mailbox unavailable (test)")] * 2
        # Retried with exponential backoff (60 s, then 120 s, plus up to 10% jitter),
        # counted from the failure, which happened while the worker ran.
        due = scheduled_at(redis_conn)
        assert len(due) == 2 and all(started + low - 1 <= at <= ended + high + 1 for at in due), due
        assert fast_forward(redis_conn) == 2

    drain(relay=False)  # the third and last attempt
    rows = list(CampaignDelivery.objects.filter(campaign=news).values_list("status", "attempts", "last_error"))
    assert rows == [(Status.FAILED, 3, "SMTP 550 mailbox unavailable (test)")] * 2
    assert FailedJob.objects.filter(job_name="marketing.jobs.send_campaign_email").count() == 2
    assert scheduled_at(redis_conn) == [] and smtp_server.messages == []
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT  # nothing left open: the campaign is over


def test_the_rate_limit_holds_a_tenant_to_its_sends_per_minute(
    redis_conn: Redis, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    smtp_for_workers(monkeypatch, settings)
    monkeypatch.setenv("CAMPAIGN_RATE_PER_MINUTE", "5")
    busy, quiet = TenantFactory.create(), TenantFactory.create()
    subscribers(busy, 12)
    subscribers(quiet, 3)
    big, small = campaign(busy), campaign(quiet)
    for news in (big, small):
        campaign_send(campaign_id=news.pk)
        campaign_fan_out(campaign_id=news.pk)
    fresh_window()
    window = int(time.time() // 60)
    drain(relay=False)
    assert int(time.time() // 60) == window, "the test ran across a minute boundary"

    sent_to = [str(m["To"]) for m in smtp_server.messages]
    assert sum(busy.slug in to for to in sent_to) == 5  # held to 5 this minute
    assert sum(quiet.slug in to for to in sent_to) == 3  # another tenant is not held back by it
    held = CampaignDelivery.objects.filter(campaign=big, status=Status.PENDING)
    assert held.count() == 7
    assert set(held.values_list("attempts", flat=True)) == {0}  # released, not attempted
    assert not FailedJob.objects.exists()
    # The 7 held-back jobs wait for later minutes, spread: 5 in the next, 2 in the one after.
    windows = [int(at // 60) - window for at in scheduled_at(redis_conn)]
    assert windows == [1] * 5 + [2] * 2
    big.refresh_from_db()
    small.refresh_from_db()
    assert (big.status, small.status) == (Campaign.Status.SENDING, Campaign.Status.SENT)

    # When their minute comes they are sent (no minute has to pass in the test: a new
    # window is simulated by making them due and clearing this minute's counters).
    for key in redis_conn.scan_iter("vito:ratelimit:campaign-email:*"):
        redis_conn.delete(key)
    fast_forward(redis_conn)
    drain(relay=False)
    assert CampaignDelivery.objects.filter(campaign=big, status=Status.SENT).count() == 10


def test_a_claim_belongs_to_one_job_and_its_own_retries(smtp_server: Any) -> None:
    tenant = TenantFactory.create()
    [subscriber] = subscribers(tenant, 1)
    news = campaign(tenant)
    news.status = Campaign.Status.SENDING
    news.save()
    delivery = CampaignDelivery.objects.create(campaign=news, subscriber=subscriber)
    # Job "A" claimed it and was killed mid-send: the row says so.
    CampaignDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.SENDING, claimed_by="A", claimed_at=timezone.now(), attempts=1
    )
    assert delivery_send(tenant_id=tenant.pk, delivery_id=delivery.pk, claim="B") == "settled"  # a duplicate job
    assert smtp_server.messages == []
    assert delivery_send(tenant_id=tenant.pk + 1, delivery_id=delivery.pk, claim="A") == "missing"  # other tenant
    assert delivery_send(tenant_id=tenant.pk, delivery_id=delivery.pk, claim="A") == "sent"  # A's retry
    assert len(smtp_server.messages) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.SENT, 2)
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT

    # A claim whose job is gone for good (older than an hour) can be taken over.
    other = CampaignDelivery.objects.create(campaign=campaign(tenant), subscriber=subscriber)
    CampaignDelivery.objects.filter(pk=other.pk).update(
        status=Status.SENDING, claimed_by="lost", claimed_at=timezone.now() - timedelta(hours=2)
    )
    assert delivery_send(tenant_id=tenant.pk, delivery_id=other.pk, claim="C") == "sent"
    assert len(smtp_server.messages) == 2


def test_concurrent_workers_finish_the_campaign_exactly_once(
    redis_conn: Redis, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    import subprocess
    import sys
    import tempfile

    from tests.queueing.conftest import worker_env

    smtp_for_workers(monkeypatch, settings)
    tenant = TenantFactory.create()
    subscribers(tenant, 60)
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    campaign_fan_out(campaign_id=news.pk)
    campaign_fan_out(campaign_id=news.pk)  # duplicates too, racing for the same claims
    command = [sys.executable, "manage.py", "rqworker", "default", "--burst"]
    logs = [tempfile.TemporaryFile(mode="w+") for _ in range(3)]  # noqa: SIM115 - closed below
    procs = [
        subprocess.Popen(command, env=worker_env(), cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    codes = [proc.wait(timeout=120) for proc in procs]
    output = ""
    for log in logs:  # what went wrong, if anything, for the assertion messages
        log.seek(0)
        output += "".join(line for line in log if " WARNING " in line or " ERROR " in line)[-5000:]
        log.close()
    assert codes == [0, 0, 0], output
    assert get_queue("default").count == 0, output
    assert len(smtp_server.messages) == 60, output
    assert set(CampaignDelivery.objects.values_list("status", "attempts")) == {(Status.SENT, 1)}, output
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT and news.sent_at is not None
