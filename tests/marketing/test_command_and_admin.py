from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client
from redis import Redis

from marketing.models import Campaign, CampaignDelivery
from queueing.dispatch import get_queue
from tests.factories import TenantFactory, UserFactory
from tests.marketing.helpers import campaign, subscribers
from tests.queueing.conftest import worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def _command(*args: str) -> str:
    out = StringIO()
    call_command("campaign_send", *args, stdout=out)
    return out.getvalue()


def test_campaign_send_command(redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    subscribers(tenant, 3)
    news = campaign(tenant)
    assert "would send to 3 active subscriber(s)" in _command(str(news.pk), "--dry-run")
    with pytest.raises(CommandError, match="is a draft") as draft:
        _command(str(news.pk), "--resume")
    assert draft.value.returncode == 2
    news.refresh_from_db()
    assert news.status == Campaign.Status.DRAFT

    assert "sending; the fan-out is queued" in _command(str(news.pk))
    assert "already sending; nothing done (--resume" in _command(str(news.pk))
    assert "0 open deliveries would be queued again" in _command(str(news.pk), "--resume", "--dry-run")  # none yet
    out = _command(str(news.pk), "--resume")
    assert "3 new deliveries, 3 job(s) queued" in out and "3 pending" in out
    assert get_queue("default").count == 3
    assert "3 open deliveries would be queued again" in _command(str(news.pk), "--resume", "--dry-run")


def test_a_bad_id_is_a_usage_error_with_exit_status_2() -> None:
    for bad in ("999999", "abc"):
        done = subprocess.run(
            [sys.executable, "manage.py", "campaign_send", bad],
            env=worker_env(), cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert ("no campaign with id 999999" if bad == "999999" else "invalid int value") in done.stderr


def test_admin_lists_progress_and_sends_and_resumes(redis_conn: Redis, client: Client) -> None:
    tenant = TenantFactory.create()
    subscribers(tenant, 2)
    news, old = campaign(tenant, subject="News"), campaign(tenant, subject="Old")
    Campaign.objects.filter(pk=old.pk).update(status=Campaign.Status.SENT)
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    url = "/admin/marketing/campaign/"

    response = client.post(url, {"action": "send_campaign", "_selected_action": [news.pk, old.pk]}, follow=True)
    assert response.status_code == 200
    assert "Sending 1 campaign(s)" in response.text and "Old" in response.text and "(sent)" in response.text
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENDING

    response = client.post(url, {"action": "resume_sending", "_selected_action": [news.pk]}, follow=True)
    assert "Queued the fan-out of 1 sending campaign(s) again" in response.text
    [fan_out] = get_queue("default").get_jobs()
    assert fan_out.func_name == "marketing.jobs.fan_out_campaign" and list(fan_out.args) == [tenant.pk, news.pk]
    fan_out.perform()  # the job's function, here, as the worker would
    assert CampaignDelivery.objects.filter(campaign=news).count() == 2

    listing = client.get(url)
    assert listing.status_code == 200
    for column in ("recipients", "pending", "sent", "failed", "skipped"):
        assert f"column-{column}" in listing.text
    assert client.get(url, {"o": "7"}).status_code == 200  # sortable by a progress column
    detail = client.get(f"{url}{news.pk}/change/")
    assert "2 total, 2 pending, 0 sending, 0 sent, 0 failed, 0 skipped" in detail.text
