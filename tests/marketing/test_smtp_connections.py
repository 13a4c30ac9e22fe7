"""A campaign through a real worker reuses one SMTP connection (lib.mail.send):
one session for the whole burst, sessions the server ends are reopened without
losing or doubling a recipient, a connection lost after a message went out
is left to the job's retry (at-least-once, as before), and a refusal at RCPT
keeps the session (4xx retried by the job, 5xx undeliverable)."""

from __future__ import annotations

import smtplib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from marketing.models import Campaign, CampaignDelivery
from marketing.services import UndeliverableAddress, campaign_send, delivery_send
from queueing.models import FailedJob
from tests.factories import TenantFactory
from tests.lib.smtp_servers import Server, point_django_at, serving
from tests.marketing.helpers import campaign, drain, fast_forward, subscribers

pytestmark = pytest.mark.django_db(transaction=True)
Status = CampaignDelivery.Status


@pytest.fixture
def smtp(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    with serving(Server()) as (server, port):
        point_django_at(settings, port)
        monkeypatch.setenv("EMAIL_URL", server.url)  # for the worker subprocesses
        yield server


def _recipients(server: Server) -> Counter[str]:
    with server.lock:
        return Counter(str(m["To"]) for m in server.messages)


def test_a_worker_sends_the_whole_campaign_on_one_connection(redis_conn: Redis, smtp: Server) -> None:
    tenant = TenantFactory.create()
    subscribers(tenant, 30)
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    drain()  # one burst worker: the fan-out, then 30 × send_campaign_email

    assert _recipients(smtp) == Counter({f"s{n}@{tenant.slug}.example.com": 1 for n in range(30)})
    assert smtp.count("connections") == 1
    assert smtp.count("closed") == 1  # the worker said QUIT on its way out
    assert set(CampaignDelivery.objects.values_list("status", "attempts")) == {(Status.SENT, 1)}


@pytest.mark.parametrize("ending", ["421", "close"])
def test_sessions_the_server_ends_are_reopened_and_every_recipient_gets_one_email(
    redis_conn: Redis, smtp: Server, ending: Any
) -> None:
    smtp.max_messages, smtp.ending = 7, ending  # the session ends at the 8th MAIL
    tenant = TenantFactory.create()
    subscribers(tenant, 30)
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    drain()

    assert _recipients(smtp) == Counter({f"s{n}@{tenant.slug}.example.com": 1 for n in range(30)})
    assert smtp.count("connections") == 5  # 7 + 7 + 7 + 7 + 2
    # Resent on the new connection inside the same attempt: no job retry, no failure.
    assert set(CampaignDelivery.objects.values_list("status", "attempts", "last_error")) == {(Status.SENT, 1, "")}
    assert not FailedJob.objects.exists()
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT


def test_a_connection_lost_after_the_message_went_out_is_retried_by_the_job(redis_conn: Redis, smtp: Server) -> None:
    smtp.swallow = 1  # the first message is taken, then the connection drops before its "250"
    tenant = TenantFactory.create()
    subscribers(tenant, 5)
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    drain()

    [(unsure, unsure_attempts, error)] = CampaignDelivery.objects.filter(status=Status.PENDING).values_list(
        "subscriber__email", "attempts", "last_error"
    )
    assert unsure_attempts == 1 and error.startswith("SMTPServerDisconnected")
    assert CampaignDelivery.objects.filter(status=Status.SENT).count() == 4
    assert fast_forward(redis_conn) == 1  # the job's retry, after its backoff
    drain(relay=False)

    # The server did get the first copy: an SMTP send cannot be taken back, so that
    # one recipient is mailed twice (at-least-once, as documented); nobody is lost.
    expected = Counter({f"s{n}@{tenant.slug}.example.com": 1 for n in range(5)})
    expected[unsure] = 2
    assert _recipients(smtp) == expected
    assert set(CampaignDelivery.objects.values_list("status", flat=True)) == {Status.SENT}
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT


def test_a_temporary_refusal_is_retried_a_permanent_one_fails_and_the_session_goes_on(smtp: Server) -> None:
    tenant = TenantFactory.create()
    news = campaign(tenant)
    news.status = Campaign.Status.SENDING
    news.save()
    first, second, third = (
        CampaignDelivery.objects.create(campaign=news, subscriber=s) for s in subscribers(tenant, 3)
    )

    smtp.refuse_rcpt = "451 4.7.1 greylisted, try again later"
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # not UndeliverableAddress: the job retries it
        delivery_send(tenant_id=tenant.pk, delivery_id=first.pk, claim="job-1")
    first.refresh_from_db()
    assert (first.status, first.last_error.split(": ", 1)[1]) == (
        Status.PENDING,
        "SMTP 451 4.7.1 greylisted, try again later",
    )

    smtp.refuse_rcpt = "550 5.1.1 no such user"
    with pytest.raises(UndeliverableAddress):
        delivery_send(tenant_id=tenant.pk, delivery_id=second.pk, claim="job-2")

    smtp.refuse_rcpt = ""
    assert delivery_send(tenant_id=tenant.pk, delivery_id=third.pk, claim="job-3") == "sent"
    assert delivery_send(tenant_id=tenant.pk, delivery_id=first.pk, claim="job-1") == "sent"  # its retry
    assert len(smtp.messages) == 2 and smtp.count("connections") == 1  # a refusal leaves the session usable
