from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from redis import Redis

from orders.models import Order, Product
from orders.services import LineRequest, OrderNotPending, order_mark_paid, order_place, order_release_stale
from outbox.models import OutboxMessage
from tests.factories import ProductFactory, TenantFactory
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _order(product: Product, quantity: int = 1, minutes_ago: int = 45) -> Order:
    order = order_place(
        tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, quantity)]
    )
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return order


def test_stale_pending_orders_are_released_and_stock_comes_back_once() -> None:
    product = ProductFactory.create(stock_quantity=10)
    stale = [_order(product, 2) for _ in range(3)]
    fresh = _order(product, 1, minutes_ago=5)
    paid = _order(product, 1)
    order_mark_paid(order_id=paid.pk)
    assert Product.objects.get(pk=product.pk).stock_quantity == 10 - 6 - 1 - 1
    result = order_release_stale(older_than=timedelta(minutes=30))
    assert sorted(result.order_ids) == sorted(o.pk for o in stale)
    assert order_release_stale(older_than=timedelta(minutes=30)).released == 0  # nothing twice
    assert Product.objects.get(pk=product.pk).stock_quantity == 10 - 1 - 1
    assert Order.objects.get(pk=fresh.pk).status == Order.Status.PENDING
    assert Order.objects.get(pk=paid.pk).status == Order.Status.PAID
    released = Order.objects.get(pk=stale[0].pk)
    assert released.status == Order.Status.CANCELLED and released.cancel_reason == "Not paid within 30 minutes"
    events = OutboxMessage.objects.filter(event_type="order.cancelled", payload__released=True)
    assert sorted(int(e.aggregate_id) for e in events) == sorted(o.pk for o in stale)


def test_it_is_set_based(django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    tenant = TenantFactory.create()
    products = [ProductFactory.create(tenant=tenant, stock_quantity=1000) for _ in range(5)]
    for i in range(300):
        _order(products[i % 5])
    # One batch: claim+cancel, lock products, restore stock, outbox insert,
    # NOTIFY, plus the transaction's own statements — not 300 round trips.
    with django_assert_max_num_queries(12):
        assert order_release_stale(older_than=timedelta(minutes=30)).released == 300
    assert sum(Product.objects.filter(tenant=tenant).values_list("stock_quantity", flat=True)) == 5000


def test_one_tenant_only_and_dry_run() -> None:
    mine, theirs = ProductFactory.create(stock_quantity=5), ProductFactory.create(stock_quantity=5)
    a, b = _order(mine), _order(theirs)
    assert order_release_stale(older_than=timedelta(minutes=30), tenant_id=mine.tenant_id, dry_run=True).released == 1
    assert Order.objects.get(pk=a.pk).status == Order.Status.PENDING
    out = StringIO()
    call_command("release_stale_orders", "--tenant", mine.tenant.slug, stdout=out)
    assert "Released 1 stale order(s)." in out.getvalue()
    assert Order.objects.get(pk=a.pk).status == Order.Status.CANCELLED
    assert Order.objects.get(pk=b.pk).status == Order.Status.PENDING
    with pytest.raises(CommandError) as info:
        call_command("release_stale_orders", "--tenant", "no-such-tenant")
    assert info.value.returncode == 2
    # An empty slug (a script's unset variable) is an unknown tenant, not "every tenant".
    with pytest.raises(CommandError, match="no tenant with slug ''") as info:
        call_command("release_stale_orders", "--tenant", "")
    assert info.value.returncode == 2
    assert Order.objects.get(pk=b.pk).status == Order.Status.PENDING


def _race_pay_and_release(order_id: int) -> dict[str, object]:
    """order_mark_paid and order_release_stale for the same order, released at the same instant."""
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def pay() -> None:
        barrier.wait()
        try:
            outcome["paid"] = order_mark_paid(order_id=order_id).status
        except OrderNotPending:
            outcome["paid"] = "refused"
        finally:
            connection.close()

    def release() -> None:
        barrier.wait()
        try:
            outcome["released"] = order_release_stale(older_than=timedelta(minutes=30)).released
        finally:
            connection.close()

    threads = [threading.Thread(target=pay), threading.Thread(target=release)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def test_a_payment_racing_the_release_never_ends_both_paid_and_released() -> None:
    product = ProductFactory.create(stock_quantity=100)
    for _ in range(15):
        order = _order(product)
        stock_before = Product.objects.get(pk=product.pk).stock_quantity
        outcome = _race_pay_and_release(order.pk)
        final = Order.objects.get(pk=order.pk)
        stock = Product.objects.get(pk=product.pk).stock_quantity
        if final.status == Order.Status.PAID:
            assert outcome["released"] == 0 and stock == stock_before
        else:
            assert final.status == Order.Status.CANCELLED
            assert outcome["paid"] == "refused" and outcome["released"] == 1 and stock == stock_before + 1


def test_the_job_runs_in_a_worker(redis_conn: Redis) -> None:
    from orders.jobs import release_stale_orders

    product = ProductFactory.create(stock_quantity=3)
    order = _order(product, 2)
    release_stale_orders.dispatch(None, 30)
    assert run_worker("default", "--burst").returncode == 0
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert Product.objects.get(pk=product.pk).stock_quantity == 3
