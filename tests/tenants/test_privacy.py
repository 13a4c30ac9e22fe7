"""Erasing one visitor's tracking hits: POST /api/privacy/erase/ → a job, twice (now and after the drain)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from redis import Redis
from rest_framework.authtoken.models import Token
from rq.registry import ScheduledJobRegistry

from queueing.dispatch import get_queue
from tenants import tracking
from tenants.models import ErasureRequest, Interaction, Tenant, TenantMember
from tenants.tracking.erasure import erase_visitor
from tests.factories import TenantFactory, UserFactory
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh(redis_conn: Redis) -> Iterator[Redis]:
    tracking.clear_caches()
    yield redis_conn
    tracking.clear_caches()


def _member(tenant: Tenant) -> Client:
    user = UserFactory.create()
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    return Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})


def _hits(client: Client, tenant: Tenant, ip: str, count: int) -> None:
    for _ in range(count):
        client.get(f"/t/{tenant.slug}/pixel.gif", REMOTE_ADDR=ip, HTTP_USER_AGENT="Mozilla/5.0 test")


def test_one_visitors_hits_are_erased_now_and_after_the_next_drain(client: Client, redis_conn: Redis) -> None:
    tenant, other = TenantFactory.create(), TenantFactory.create()
    _hits(client, tenant, "203.0.113.7", 3)
    _hits(client, tenant, "203.0.113.8", 2)
    _hits(client, other, "203.0.113.7", 1)  # the same visitor hash, on another tenant's site
    tracking.interactions_record()
    visitor = Interaction.objects.filter(tenant=tenant).values_list("visitor", flat=True).order_by("id").first()
    assert visitor is not None and Interaction.objects.filter(visitor=visitor).count() == 4

    _hits(client, tenant, "203.0.113.7", 1)  # a hit still in the Redis buffer when the erasure is asked for
    api = _member(tenant)
    response = api.post("/api/privacy/erase/", {"visitor": visitor}, content_type="application/json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["erased"]) == ("queued", 0)

    assert run_worker("default", "--burst").returncode == 0  # `maintenance` routes to `default` here
    status = api.get(body["status_url"]).json()
    assert (status["status"], status["erased"]) == ("queued", 3)  # first pass; the second is scheduled
    assert len(ScheduledJobRegistry(queue=get_queue("default"))) == 1

    # The buffer still holds a hit older than the request: the final pass waits for the drain.
    assert erase_visitor(tenant.pk, body["id"], final=True) == 0
    assert api.get(body["status_url"]).json()["status"] == "queued"
    assert len(ScheduledJobRegistry(queue=get_queue("default"))) == 2
    tracking.interactions_record()  # the next drain brings the buffered hit in
    erase_visitor(tenant.pk, body["id"], final=True)  # the scheduled second pass, as a worker runs it
    status = api.get(body["status_url"]).json()
    assert (status["status"], status["erased"]) == ("done", 4)
    assert not Interaction.objects.filter(tenant=tenant, visitor=visitor).exists()
    assert Interaction.objects.filter(tenant=tenant).count() == 2  # the other visitor's hits stay
    assert Interaction.objects.filter(tenant=other, visitor=visitor).count() == 1  # another tenant's stay
    assert erase_visitor(tenant.pk, body["id"], final=True) == 0  # done: a repeat does nothing


def test_a_malformed_hash_or_another_tenants_request_is_refused(redis_conn: Redis) -> None:
    tenant, other = TenantFactory.create(), TenantFactory.create()
    api = _member(tenant)
    for bad in ("", "ABCDEF0123456789", "abc", "0123456789abcdef0", "zzzzzzzzzzzzzzzz", None):
        response = api.post("/api/privacy/erase/", {"visitor": bad}, content_type="application/json")
        assert response.status_code == 400 and "visitor" in response.json(), bad
    assert api.post("/api/privacy/erase/", {}, content_type="application/json").status_code == 400
    assert not ErasureRequest.objects.exists() and get_queue("default").count == 0
    foreign = ErasureRequest.objects.create(tenant=other, visitor="0123456789abcdef")
    assert api.get(f"/api/privacy/erase/{foreign.pk}/").status_code == 404
    anonymous: Any = Client().post("/api/privacy/erase/", {"visitor": "0123456789abcdef"})
    assert anonymous.status_code in (401, 403)
