from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Model
from django.utils import timezone

from appointments.models import Appointment
from marketing.models import Campaign, Subscriber
from orders.models import Order, OrderItem, Product
from tenants.models import BusinessProfile, Plan, Tenant

pytestmark = pytest.mark.django_db


def _snapshot() -> dict[str, int]:
    models: list[type[Model]] = [
        Plan,
        Tenant,
        BusinessProfile,
        Product,
        Order,
        OrderItem,
        Appointment,
        Subscriber,
        Campaign,
    ]
    return {m.__name__: m._default_manager.count() for m in models}


def test_it_seeds_every_kind_of_row_once() -> None:
    call_command("seed_demo", verbosity=0)
    first = _snapshot()
    call_command("seed_demo", verbosity=0)
    assert _snapshot() == first
    assert first["Plan"] == 3
    assert first["Tenant"] == 3
    assert set(Tenant.objects.values_list("plan__slug", flat=True)) == {"starter", "growth", "scale"}
    assert first["Campaign"] == 3 and not Campaign.objects.exclude(status=Campaign.Status.DRAFT).exists()
    assert first["Subscriber"] == 3 * 25


def test_it_leaves_work_for_the_jobs() -> None:
    call_command("seed_demo", verbosity=0)
    now = timezone.now()
    stale = Order.objects.filter(status=Order.Status.PENDING, created_at__lt=now - timedelta(minutes=30))
    fresh = Order.objects.filter(status=Order.Status.PENDING, created_at__gte=now - timedelta(minutes=30))
    assert stale.count() >= 3 and fresh.count() >= 3
    due = Appointment.objects.filter(starts_at__gte=now + timedelta(hours=23), starts_at__lt=now + timedelta(hours=24))
    assert due.count() >= 3
    # Every order's total matches its items.
    for order in Order.objects.prefetch_related("items")[:20]:
        assert order.total == sum(i.unit_price * i.quantity for i in order.items.all())


def test_larger_numbers_top_up_without_duplicates() -> None:
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", tenants=5, orders=60, appointments=12, subscribers=30, verbosity=0)
    assert Tenant.objects.count() == 5
    assert Order.objects.count() == 5 * 60
    assert Appointment.objects.count() == 5 * 12
    assert Subscriber.objects.count() == 5 * 30
    assert Order.objects.values("tenant", "number").distinct().count() == 5 * 60


def test_it_rejects_a_negative_count() -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="expected zero or more"):
        call_command("seed_demo", "--orders", "-3")
