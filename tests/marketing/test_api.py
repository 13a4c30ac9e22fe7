from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from redis import Redis
from rest_framework.authtoken.models import Token

from marketing.models import Campaign
from tenants.models import Tenant, TenantMember
from tests.factories import TenantFactory, UserFactory
from tests.marketing.helpers import campaign, drain, smtp_for_workers, subscribers

pytestmark = pytest.mark.django_db(transaction=True)


def _member(tenant: Tenant) -> Client:
    user = UserFactory.create()
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    return Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})


def test_send_answers_202_and_the_status_shows_progress(
    redis_conn: Redis, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    smtp_for_workers(monkeypatch, settings)
    tenant = TenantFactory.create()
    subscribers(tenant, 4)
    subscribers(tenant, 1, prefix="gone", unsubscribed=True)
    news = campaign(tenant)
    client = _member(tenant)

    before = client.get(f"/api/campaigns/{news.pk}/")
    assert before.status_code == 200 and before.json()["status"] == "draft"
    response = client.post(f"/api/campaigns/{news.pk}/send/")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["started"]) == ("sending", True)
    assert body["status_url"].endswith(f"/api/campaigns/{news.pk}/")
    again = client.post(f"/api/campaigns/{news.pk}/send/")
    assert again.status_code == 202 and again.json()["started"] is False  # idempotent

    drain()
    body = client.get(body["status_url"]).json()
    assert body["status"] == "sent" and body["sent_at"]
    assert body["progress"] == {"pending": 0, "sending": 0, "sent": 4, "failed": 0, "skipped": 0, "total": 4}
    assert len(smtp_server.messages) == 4
    late = client.post(f"/api/campaigns/{news.pk}/send/")
    assert late.status_code == 409 and "sent already" in late.json()["detail"]


def test_another_tenants_campaign_is_a_404(redis_conn: Redis) -> None:
    mine, theirs = TenantFactory.create(), TenantFactory.create()
    foreign = campaign(theirs)
    client = _member(mine)
    assert client.get(f"/api/campaigns/{foreign.pk}/").status_code == 404
    assert client.post(f"/api/campaigns/{foreign.pk}/send/").status_code == 404
    assert client.post(f"/api/campaigns/{foreign.pk}/send/", headers={"X-Tenant": theirs.slug}).status_code == 404
    assert client.get("/api/campaigns/999999/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == Campaign.Status.DRAFT
    assert Client().post(f"/api/campaigns/{foreign.pk}/send/").status_code in (401, 403)
