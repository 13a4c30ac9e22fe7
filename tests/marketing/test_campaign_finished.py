"""campaign.finished: published when the last delivery settles, in the transaction
that marks the campaign sent, once, with the campaign's counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from marketing.models import Campaign, CampaignDelivery
from marketing.services import campaign_complete_if_done, delivery_fail, delivery_send, delivery_skip
from outbox.models import OutboxMessage
from tests.factories import TenantFactory
from tests.marketing.helpers import campaign, subscribers
from webhooks.outbound.catalog import event_type

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def test_the_last_settled_delivery_publishes_campaign_finished_once(smtp_server: Any) -> None:
    tenant = TenantFactory.create()
    news = campaign(tenant, subject="Spring sale")
    Campaign.objects.filter(pk=news.pk).update(status=Campaign.Status.SENDING)
    first, second, third, fourth = (
        CampaignDelivery.objects.create(campaign=news, subscriber=s) for s in subscribers(tenant, 4)
    )
    assert delivery_send(tenant_id=tenant.pk, delivery_id=first.pk, claim="a") == "sent"
    assert delivery_send(tenant_id=tenant.pk, delivery_id=second.pk, claim="b") == "sent"
    assert delivery_skip(delivery_id=third.pk)
    assert not OutboxMessage.objects.filter(event_type="campaign.finished").exists()  # one still open

    # The last one fails for good; the campaign is done, but this transaction rolls back.
    with pytest.raises(Rollback), transaction.atomic():
        delivery_fail(delivery_id=fourth.pk, error="550 no such user")
        assert campaign_complete_if_done(campaign_id=news.pk)
        raise Rollback
    assert not OutboxMessage.objects.filter(event_type="campaign.finished").exists()
    assert Campaign.objects.get(pk=news.pk).status == Campaign.Status.SENDING

    assert delivery_fail(delivery_id=fourth.pk, error="550 no such user")  # completes the campaign after commit
    assert campaign_complete_if_done(campaign_id=news.pk) is False  # a second look: already sent
    [message] = OutboxMessage.objects.filter(event_type="campaign.finished")
    news.refresh_from_db()
    assert news.status == Campaign.Status.SENT and news.sent_at is not None
    expected = {"campaign_id": news.pk, "name": "Spring sale", "sent": 2, "failed": 1, "skipped": 1,
                "finished_at": news.sent_at.isoformat()}  # fmt: skip
    assert message.tenant_id == tenant.pk and message.payload == expected
    registered = event_type("campaign.finished")
    assert registered is not None and registered.shape is not None
    assert registered.shape({**message.payload, "body": "…"}) == expected
