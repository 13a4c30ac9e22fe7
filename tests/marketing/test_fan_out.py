from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from redis import Redis

from marketing.models import Campaign, CampaignDelivery
from marketing.selectors import campaign_progress
from marketing.services import campaign_fan_out, campaign_send
from outbox.models import OutboxMessage
from queueing.dispatch import get_queue
from tests.factories import TenantFactory
from tests.marketing.helpers import campaign, drain, smtp_for_workers, subscribers, unsubscribe_link

pytestmark = pytest.mark.django_db(transaction=True)
Status = CampaignDelivery.Status


def _queued_args() -> list[list[Any]]:
    return [list(job.args) for job in get_queue("default").get_jobs()]


def test_fan_out_creates_one_delivery_and_one_job_per_active_subscriber(redis_conn: Redis) -> None:
    tenant, other = TenantFactory.create(), TenantFactory.create()
    active = subscribers(tenant, 25)
    subscribers(tenant, 3, prefix="gone", unsubscribed=True)
    subscribers(other, 4)
    news = campaign(tenant)

    request = campaign_send(campaign_id=news.pk)
    assert (request.started, request.status) == (True, "sending")
    # The fan-out itself is requested through the outbox, in the same transaction.
    [message] = OutboxMessage.objects.filter(event_type="campaign.send_requested")
    assert message.payload == {"campaign_id": news.pk, "tenant_id": tenant.pk}

    result = campaign_fan_out(campaign_id=news.pk)
    assert (result.created, result.dispatched) == (25, 25)
    deliveries = CampaignDelivery.objects.filter(campaign=news)
    assert sorted(deliveries.values_list("subscriber_id", flat=True)) == sorted(s.pk for s in active)
    assert set(deliveries.values_list("status", flat=True)) == {Status.PENDING}
    assert get_queue("default").count == 25
    assert sorted(_queued_args()) == sorted([tenant.pk, d] for d in deliveries.values_list("id", flat=True))

    # Sending again changes nothing: no second request, no new deliveries.
    assert campaign_send(campaign_id=news.pk).started is False
    assert OutboxMessage.objects.filter(event_type="campaign.send_requested").count() == 1
    assert CampaignDelivery.objects.count() == 25


def test_a_real_worker_sends_every_email_with_text_html_and_unsubscribe_headers(
    redis_conn: Redis, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    smtp_for_workers(monkeypatch, settings)
    tenant = TenantFactory.create(name="Salon Nova")
    subscribers(tenant, 12)
    news = campaign(tenant, subject="Spring sale", body="Everything -20% <this week>.\n\nSee you!")

    campaign_send(campaign_id=news.pk)
    drain()  # relay → deliver → fan_out_campaign → 12 × send_campaign_email, one burst worker

    assert len(smtp_server.messages) == 12
    assert sorted(str(m["To"]) for m in smtp_server.messages) == sorted(
        f"s{n}@{tenant.slug}.example.com" for n in range(12)
    )
    message = smtp_server.messages[0]
    assert message["Subject"] == "Spring sale"
    assert str(message["From"]).startswith("Salon Nova <")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Everything -20% <this week>." in text
    assert "Everything -20% &lt;this week&gt;." in html  # escaped in HTML
    link = unsubscribe_link(message)
    assert link.startswith(settings.SITE_URL + "/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in text and link in html
    # The link works (GET shows a confirmation page).
    assert Client().get(urlsplit(link).path).status_code == 200

    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT and news.sent_at is not None
    assert campaign_progress(campaign_id=news.pk) == {
        "pending": 0, "sending": 0, "sent": 12, "failed": 0, "skipped": 0, "total": 12,
    }  # fmt: skip
    assert set(CampaignDelivery.objects.values_list("attempts", flat=True)) == {1}


def test_sending_twice_or_fanning_out_twice_sends_each_email_once(
    redis_conn: Redis, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    smtp_for_workers(monkeypatch, settings)
    tenant = TenantFactory.create()
    subscribers(tenant, 10)
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    # A crash after the deliveries were created and before (or while) their jobs were
    # queued is repaired by running the fan-out again: every open delivery is queued
    # again, so some get two jobs.
    first, second = campaign_fan_out(campaign_id=news.pk), campaign_fan_out(campaign_id=news.pk)
    assert (first.created, first.dispatched, second.created, second.dispatched) == (10, 10, 0, 10)
    assert campaign_send(campaign_id=news.pk).started is False
    drain()  # also runs the outbox's own fan-out: a third job per delivery

    assert len(smtp_server.messages) == 10
    assert len({str(m["To"]) for m in smtp_server.messages}) == 10
    assert CampaignDelivery.objects.filter(campaign=news).count() == 10
    assert set(CampaignDelivery.objects.values_list("status", "attempts")) == {(Status.SENT, 1)}
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT
    # And once sent, a fan-out does nothing at all.
    assert campaign_fan_out(campaign_id=news.pk).dispatched == 0


def test_unsubscribed_recipients_are_skipped(
    redis_conn: Redis, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    smtp_for_workers(monkeypatch, settings)
    tenant = TenantFactory.create()
    stays, leaves_now = subscribers(tenant, 2)
    subscribers(tenant, 1, prefix="left-before", unsubscribed=True)
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    campaign_fan_out(campaign_id=news.pk)
    assert CampaignDelivery.objects.filter(campaign=news).count() == 2  # none for who left before

    # Between the fan-out and the send: unsubscribed through the link of an earlier e-mail.
    from marketing.emails import unsubscribe_token

    token = unsubscribe_token(subscriber_id=leaves_now.pk, tenant_id=tenant.pk)
    assert Client().post(f"/u/{token}/").status_code == 200
    drain(relay=False)

    assert [str(m["To"]) for m in smtp_server.messages] == [stays.email]
    assert dict(CampaignDelivery.objects.values_list("subscriber_id", "status")) == {
        stays.pk: Status.SENT,
        leaves_now.pk: Status.SKIPPED,
    }
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT


def test_a_campaign_without_recipients_is_sent_at_once(redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    subscribers(tenant, 2, unsubscribed=True)
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    assert campaign_fan_out(campaign_id=news.pk).dispatched == 0
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT
