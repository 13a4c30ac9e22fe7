"""link.scanned: redirect scans, drained from the Redis buffer, published once a
minute per subscribed tenant in one outbox message, each scan once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from redis import Redis

from outbox.models import OutboxMessage
from tenants import tracking
from tenants.jobs import publish_link_scans
from tenants.models import Interaction, Tenant, TrackedLink
from tenants.tracking.scans import link_scans_publish
from tests.factories import TenantFactory
from tests.queueing.conftest import run_worker
from webhooks.models import WebhookEndpoint
from webhooks.outbound.catalog import event_type, tenant_contact

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


@pytest.fixture(autouse=True)
def fresh(redis_conn: Redis) -> Iterator[Redis]:
    tracking.clear_caches()
    yield redis_conn
    tracking.clear_caches()


def subscribed(tenant: Tenant, *types: str, enabled: bool = True) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        tenant_id=tenant.pk, url="https://hooks.example.com/in", event_types=list(types), enabled=enabled
    )


def scan(client: Client, tenant: Tenant, n: int = 1, *, code: str = "flyer") -> None:
    """``n`` redirects through the public endpoint, then the drain (RecordInteraction)."""
    TrackedLink.objects.get_or_create(tenant=tenant, code=code, defaults={"destination": "https://shop.example.com/"})
    for i in range(n):
        response = client.get(f"/t/{tenant.slug}/r/{code}?utm_source=flyer", REMOTE_ADDR=f"203.0.113.{i + 1}")
        assert response.status_code == 302
    tracking.interactions_record()


def messages(tenant: Tenant) -> list[dict[str, Any]]:
    rows = OutboxMessage.objects.filter(event_type="link.scanned", tenant_id=tenant.pk).order_by("id")
    return [row.payload for row in rows]


def test_scans_go_once_in_one_message_per_tenant_and_run(client: Client) -> None:
    tenant, other = TenantFactory.create(), TenantFactory.create()
    scan(client, tenant, 2, code="before")  # before the tenant subscribed: not sent
    subscribed(tenant)  # every event type
    subscribed(other, "order.paid")  # not this one
    subscribed(other, enabled=False)
    scan(client, tenant, 3)
    scan(client, other, 2)
    assert publish_link_scans() == 1
    [first] = messages(tenant)
    assert (first["count"], first["truncated"], len(first["scans"])) == (3, False, 3)
    assert first["scans"][0] | {"occurred_at": None, "visitor": None} == {
        "code": "flyer", "occurred_at": None, "visitor": None, "utm_source": "flyer",
        "utm_medium": "", "utm_campaign": "", "utm_term": "", "utm_content": ""}  # fmt: skip
    assert publish_link_scans() == 0  # again (a retry, a second scheduler): nothing twice
    assert messages(other) == []

    scan(client, tenant, 1)
    assert publish_link_scans() == 1
    assert [(m["count"], len(m["scans"])) for m in messages(tenant)] == [(3, 3), (1, 1)]
    # The documented data is the payload's fields, for that tenant only.
    registered = event_type("link.scanned")
    assert registered is not None and registered.batched and registered.shape is not None
    assert registered.shape(messages(tenant)[0]) == messages(tenant)[0]
    assert tenant_contact(tenant.pk) == tenant.owner_email and tenant_contact(0) == ""


def test_a_rolled_back_run_publishes_nothing_and_moves_no_cursor(client: Client) -> None:
    tenant = TenantFactory.create()
    subscribed(tenant, "link.scanned")
    scan(client, tenant, 2)
    with pytest.raises(Rollback), transaction.atomic():
        assert link_scans_publish() == 1
        raise Rollback
    assert messages(tenant) == []
    assert link_scans_publish() == 1
    assert [m["count"] for m in messages(tenant)] == [2]


def test_a_backlog_goes_in_capped_messages_and_a_late_drained_scan_still_goes(client: Client) -> None:
    tenant = TenantFactory.create()
    subscribed(tenant, "link.scanned")
    scan(client, tenant, 3)
    assert link_scans_publish(limit=2) == 1
    assert link_scans_publish(limit=2) == 1
    assert [(m["count"], m["truncated"]) for m in messages(tenant)] == [(2, True), (1, False)]
    # Drained late: it happened before the last published scan, it is stored after it.
    Interaction.objects.create(tenant=tenant, kind="redirect", code="flyer", visitor="0123456789abcdef",
                               occurred_at=timezone.now() - timedelta(minutes=5), hit_id="1-0")  # fmt: skip
    assert link_scans_publish() == 1
    assert messages(tenant)[-1]["count"] == 1


def test_the_scheduled_job_runs_on_a_worker(client: Client) -> None:
    tenant = TenantFactory.create()
    subscribed(tenant, "link.scanned")
    scan(client, tenant, 1)
    publish_link_scans.dispatch()
    assert run_worker("default", "--burst").returncode == 0  # webhook-deliveries is `default` in Vito's layout
    assert [m["count"] for m in messages(tenant)] == [1]
