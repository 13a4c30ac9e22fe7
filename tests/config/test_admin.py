from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OUR_APPS = {"tenants", "orders", "appointments", "marketing", "analytics", "webhooks", "outbox", "queueing"}


def _changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
        if model._meta.app_label in OUR_APPS
    ]


def test_every_domain_model_is_in_the_admin() -> None:
    registered = {m._meta.label for m in admin.site._registry}
    for label in (
        "tenants.Plan",
        "tenants.Tenant",
        "tenants.TenantMember",
        "tenants.BusinessProfile",
        "orders.Product",
        "orders.Order",
        "orders.OrderItem",
        "webhooks.WebhookEvent",
        "appointments.Appointment",
        "marketing.Subscriber",
        "marketing.Campaign",
        "marketing.CampaignDelivery",
    ):
        assert label in registered


def test_a_superuser_gets_every_changelist(client: Client) -> None:
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    for url in _changelists():
        response = client.get(url)
        assert response.status_code == 200, url
        # Search must work too (search_fields point at real columns).
        assert client.get(url, {"q": "demo"}).status_code == 200, url
    assert client.get(reverse("admin:index")).status_code == 200
    # django-rq's queue views live inside the admin, behind the same gate.
    response = client.get("/admin/django_rq/dashboard/")
    assert response.status_code == 200
    assert b"default" in response.content and b"high" in response.content


def test_plain_staff_is_kept_out(client: Client) -> None:
    client.force_login(UserFactory.create(is_staff=True, is_superuser=False))
    for url in [reverse("admin:index"), "/admin/django_rq/dashboard/", *_changelists()]:
        response = client.get(url)
        assert response.status_code in (302, 403), url
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get(reverse("admin:orders_order_changelist"))
    assert response.status_code == 302
    assert client.get(reverse("admin:login")).status_code == 200


@pytest.mark.parametrize("args", [("--username", ""), ("--username", "two words"), ("--email", "not-an-e-mail")])
def test_ensure_admin_rejects_a_bad_username_or_email(args: tuple[str, str]) -> None:
    # create_superuser() validates neither: "" was a traceback, the others were stored.
    with pytest.raises(CommandError, match=args[0]) as info:
        call_command("ensure_admin", *args)
    assert info.value.returncode == 2
    assert not User.objects.exists()
