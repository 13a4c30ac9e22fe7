from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from orders.models import Order, Product
from orders.services import (
    InsufficientStock,
    LineRequest,
    OrderNotPending,
    UnknownProduct,
    order_cancel,
    order_mark_paid,
    order_place,
)
from tests.factories import ProductFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_it_places_an_order_and_reserves_stock() -> None:
    product = ProductFactory.create(stock_quantity=5, price=Decimal("2.50"))
    order = order_place(
        tenant=product.tenant,
        customer_email="a@example.com",
        lines=[LineRequest(product.pk, 2), LineRequest(product.pk, 1)],
    )
    product.refresh_from_db()
    assert product.stock_quantity == 2
    assert order.status == Order.Status.PENDING
    assert order.total == Decimal("7.50")
    assert [(i.product_id, i.quantity, i.unit_price) for i in order.items.all()] == [(product.pk, 3, Decimal("2.50"))]


def test_it_refuses_insufficient_stock_and_changes_nothing() -> None:
    tenant = TenantFactory.create()
    plenty = ProductFactory.create(tenant=tenant, stock_quantity=10)
    scarce = ProductFactory.create(tenant=tenant, stock_quantity=1)
    with pytest.raises(InsufficientStock, match=f"not enough stock for {scarce.sku}: 2 requested, 1 available"):
        order_place(
            tenant=tenant, customer_email="a@example.com", lines=[LineRequest(plenty.pk, 4), LineRequest(scarce.pk, 2)]
        )
    assert Product.objects.get(pk=plenty.pk).stock_quantity == 10
    assert Product.objects.get(pk=scarce.pk).stock_quantity == 1
    assert not Order.objects.exists()


def test_it_fails_closed_on_another_tenants_product() -> None:
    foreign = ProductFactory.create(stock_quantity=3)
    with pytest.raises(UnknownProduct):
        order_place(tenant=TenantFactory.create(), customer_email="a@example.com", lines=[LineRequest(foreign.pk, 1)])
    assert Product.objects.get(pk=foreign.pk).stock_quantity == 3


def test_it_restores_stock_exactly_once_on_cancel() -> None:
    product = ProductFactory.create(stock_quantity=4)
    order = order_place(tenant=product.tenant, customer_email="a@example.com", lines=[LineRequest(product.pk, 3)])
    assert order_cancel(order_id=order.pk, reason="customer request") is True
    assert order_cancel(order_id=order.pk, reason="again") is False
    product.refresh_from_db()
    order.refresh_from_db()
    assert product.stock_quantity == 4
    assert order.status == Order.Status.CANCELLED
    assert order.cancel_reason == "customer request"
    assert order.cancelled_at is not None and order.stock_restored_at is not None


def test_it_marks_paid_idempotently_and_never_pays_a_cancelled_order() -> None:
    product = ProductFactory.create(stock_quantity=4)
    paid = order_place(tenant=product.tenant, customer_email="a@example.com", lines=[LineRequest(product.pk, 1)])
    assert order_mark_paid(order_id=paid.pk).status == Order.Status.PAID
    first_paid_at = Order.objects.get(pk=paid.pk).paid_at
    assert order_mark_paid(order_id=paid.pk).paid_at == first_paid_at
    assert order_cancel(order_id=paid.pk, reason="too late") is False

    cancelled = order_place(tenant=product.tenant, customer_email="a@example.com", lines=[LineRequest(product.pk, 1)])
    order_cancel(order_id=cancelled.pk, reason="stale")
    with pytest.raises(OrderNotPending):
        order_mark_paid(order_id=cancelled.pk)
    assert Product.objects.get(pk=product.pk).stock_quantity == 3


def _race(target_count: int, work: object) -> list[object]:
    """Run ``work`` in ``target_count`` threads released at the same instant."""
    barrier = threading.Barrier(target_count)
    results: list[object] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())  # type: ignore[operator]
        except Exception as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(target_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_two_threads_racing_for_the_last_unit_sell_it_once() -> None:
    product = ProductFactory.create(stock_quantity=1)
    results = _race(
        2,
        lambda: order_place(tenant=product.tenant, customer_email="r@example.com", lines=[LineRequest(product.pk, 1)]),
    )
    assert sorted(type(r).__name__ for r in results) == ["InsufficientStock", "Order"]
    assert Product.objects.get(pk=product.pk).stock_quantity == 0
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_and_payment_restore_stock_once() -> None:
    product = ProductFactory.create(stock_quantity=5)
    order = order_place(tenant=product.tenant, customer_email="r@example.com", lines=[LineRequest(product.pk, 2)])
    results = _race(4, lambda: order_cancel(order_id=order.pk, reason="race"))
    assert results.count(True) == 1
    assert results.count(False) == 3
    assert Product.objects.get(pk=product.pk).stock_quantity == 5
