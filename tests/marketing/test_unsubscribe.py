from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from marketing.emails import read_unsubscribe_token, unsubscribe_token, unsubscribe_url
from marketing.models import CampaignDelivery, Subscriber
from marketing.services import campaign_fan_out, campaign_send
from tenants.downloads import download_token
from tests.factories import TenantFactory
from tests.marketing.helpers import campaign, subscribers

pytestmark = pytest.mark.django_db(transaction=True)


def _path(subscriber: Subscriber) -> str:
    return f"/u/{unsubscribe_token(subscriber_id=subscriber.pk, tenant_id=subscriber.tenant_id)}/"


def test_get_asks_and_post_unsubscribes(client: Client) -> None:
    tenant = TenantFactory.create(name="Salon Nova")
    [subscriber] = subscribers(tenant, 1)
    page = client.get(_path(subscriber))
    assert page.status_code == 200
    assert subscriber.email in page.text and "Salon Nova" in page.text and 'method="post"' in page.text
    assert page["Cache-Control"] == "private, no-store"
    subscriber.refresh_from_db()
    assert subscriber.unsubscribed_at is None  # GET (a link preview, a scanner) changes nothing

    done = client.post(_path(subscriber))
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    subscriber.refresh_from_db()
    first = subscriber.unsubscribed_at
    assert first is not None
    # Again, and GET afterwards: still fine, nothing moves.
    assert client.post(_path(subscriber)).status_code == 200
    assert "You are unsubscribed" in client.get(_path(subscriber)).text
    subscriber.refresh_from_db()
    assert subscriber.unsubscribed_at == first


def test_one_click_unsubscribe_from_a_mail_client_needs_no_csrf_token() -> None:
    tenant = TenantFactory.create()
    [subscriber] = subscribers(tenant, 1)
    mail_client = Client(enforce_csrf_checks=True)
    response = mail_client.post(_path(subscriber), "List-Unsubscribe=One-Click",
                                content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.unsubscribed_at is not None


def test_a_tampered_or_foreign_token_is_refused_with_a_clear_page(client: Client) -> None:
    tenant = TenantFactory.create()
    [subscriber, other] = subscribers(tenant, 2)
    token = unsubscribe_token(subscriber_id=subscriber.pk, tenant_id=tenant.pk)
    signature = token.rpartition(":")[2]
    forged = [
        f"{other.pk}.{tenant.pk}:{signature}",  # someone else's id under this signature
        token[:-3],  # cut short
        "nonsense",
        download_token(kind="export", object_id=subscriber.pk, tenant_id=tenant.pk),  # another purpose's token
    ]
    for bad in forged:
        for method in (client.get, client.post):
            response = method(f"/u/{bad}/")
            assert response.status_code == 403, bad
            assert "This unsubscribe link is not valid" in response.text
    assert not Subscriber.objects.filter(unsubscribed_at__isnull=False).exists()
    assert client.put(f"/u/{token}/").status_code == 405
    assert read_unsubscribe_token(token) == (subscriber.pk, tenant.pk)
    assert unsubscribe_url(subscriber_id=subscriber.pk, tenant_id=tenant.pk).endswith(f"/u/{token}/")


def test_a_link_signed_before_a_key_rotation_still_works(client: Client, settings: Any) -> None:
    tenant = TenantFactory.create()
    [subscriber] = subscribers(tenant, 1)
    old_path = _path(subscriber)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-after-rotation-" + "x" * 40
    assert client.post(old_path).status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.unsubscribed_at is not None
    settings.SECRET_KEY_FALLBACKS = []  # once the old key is dropped, its links are refused
    assert client.post(old_path).status_code == 403


def test_a_later_campaign_leaves_out_who_unsubscribed(client: Client) -> None:
    tenant = TenantFactory.create()
    stays, leaves = subscribers(tenant, 2)
    assert client.post(_path(leaves)).status_code == 200
    news = campaign(tenant)
    campaign_send(campaign_id=news.pk)
    assert campaign_fan_out(campaign_id=news.pk).created == 1
    assert list(CampaignDelivery.objects.values_list("subscriber_id", flat=True)) == [stays.pk]


def test_a_deleted_subscriber_gets_the_done_page(client: Client) -> None:
    tenant = TenantFactory.create()
    [subscriber] = subscribers(tenant, 1)
    path = _path(subscriber)
    subscriber.delete()
    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 200
