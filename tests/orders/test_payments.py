"""The payment and refund rules (orders/payments.py) through the providers'
handlers: intake and processing as the ``high`` job runs them, without HTTP or
a worker. Refunds belong to one payment, whatever order events arrive in."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from redis import Redis

from orders.models import Order, Payment
from orders.services import LineRequest, order_place, order_release_stale
from tests.factories import ProductFactory
from webhooks.intake import webhook_receive
from webhooks.processing import webhook_process

pytestmark = pytest.mark.django_db(transaction=True)


def _order() -> Order:
    product = ProductFactory.create(stock_quantity=10, price=Decimal("12.50"))
    return order_place(tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, 2)])


def _deliver(provider: str, kind: str, obj: dict[str, Any]) -> str:
    """Intake, then processing as the high-queue job runs it (in the outbox
    delivery's transaction), without HTTP or a worker: the service rules only."""
    if provider == "stripe":
        event_id = f"evt_{uuid.uuid4().hex}"
        payload = {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}
    else:
        event_id, payload = f"msg_{uuid.uuid4().hex}", {"type": kind, "data": obj}
    received = webhook_receive(provider=provider, event_id=event_id, event_type=kind, payload=payload)
    with transaction.atomic():
        return webhook_process(webhook_event_id=received.pk)


def _pay(order: Order, provider: str, intent: str = "pi_1") -> str:
    if provider == "stripe":
        obj = {"id": intent, "amount_received": 2500, "currency": "usd", "metadata": {"order_id": str(order.pk)}}
        return _deliver("stripe", "payment_intent.succeeded", obj)
    return _deliver("standard", "payment.succeeded", {"order_id": order.pk, "amount": "25.00", "currency": "USD"})


def _refund(order: Order, provider: str, intent: str = "pi_1") -> str:
    if provider == "stripe":
        obj = {"id": f"ch_{intent}", "amount_refunded": 2500, "currency": "usd", "payment_intent": intent,
               "metadata": {"order_id": str(order.pk)}}  # fmt: skip
        return _deliver("stripe", "charge.refunded", obj)
    return _deliver("standard", "payment.refunded", {"order_id": order.pk, "amount": "25.00", "currency": "USD"})


def _flagged(order: Order) -> list[str]:
    return list(Payment.objects.filter(order=order, needs_refund=True).values_list("reference", flat=True))


@pytest.mark.parametrize("provider", ["stripe", "standard"])
@pytest.mark.parametrize("steps", list(itertools.permutations(("refund", "release", "pay"))), ids="-".join)
def test_refunded_money_is_never_flagged_for_refund_whatever_the_order(
    redis_conn: Redis, provider: str, steps: tuple[str, ...]
) -> None:
    """The review's case is refund → release → pay: the refund arrives while the
    order is pending, ReleaseStaleOrders cancels it, then the delayed payment
    arrives. Flagging it ``needs_refund`` would have an operator refund it twice.
    In every order: nothing flagged, one payment, one refund."""
    order = _order()
    for step in steps:
        if step == "release":
            order_release_stale(older_than=timedelta(0))
        else:
            (_pay if step == "pay" else _refund)(order, provider)
    order.refresh_from_db()
    paid_first = steps.index("pay") < steps.index("release")
    assert order.status == (Order.Status.REFUNDED if paid_first else Order.Status.CANCELLED)
    assert _flagged(order) == []
    assert sorted(Payment.objects.filter(order=order).values_list("kind", flat=True)) == ["refunded", "succeeded"]


def test_a_refund_of_another_payment_does_not_refund_this_one(redis_conn: Redis) -> None:
    """A refund on record counts only for the payment it returns: not another
    PaymentIntent's (an earlier attempt on the same order), not another provider's."""
    order = _order()
    _refund(order, "stripe", intent="pi_earlier")
    _refund(order, "standard")
    assert _pay(order, "stripe", intent="pi_1") == "order paid"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert _flagged(order) == []


@pytest.mark.parametrize("provider", ["stripe", "standard"])
def test_a_second_payment_is_flagged_and_its_refund_leaves_the_order_paid(redis_conn: Redis, provider: str) -> None:
    """Money paid twice for one order: the second payment is flagged for refund;
    the refund that returns it clears the flag and does not refund the order."""
    order = _order()
    _pay(order, provider, intent="pi_1")
    _pay(order, provider, intent="pi_2")  # (a Standard Webhooks payment is named by its own event id)
    second = Payment.objects.filter(order=order).latest("pk").reference
    assert _flagged(order) == [second]
    _refund(order, provider, intent="pi_2")
    assert _flagged(order) == []
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert Payment.objects.get(order=order, kind=Payment.Kind.REFUNDED).refunded_reference == second


def test_a_refund_that_names_no_payment_returns_one_payment_only(redis_conn: Redis) -> None:
    """Standard Webhooks refunds name no payment: the first payment without a
    refund claims it, so a later second payment still needs its own refund."""
    order = _order()
    _pay(order, "standard")
    first_ref = Payment.objects.get(order=order).reference
    assert _refund(order, "standard") == "order refunded"
    _pay(order, "standard")
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert Payment.objects.get(order=order, kind=Payment.Kind.REFUNDED).refunded_reference == first_ref
    assert _flagged(order) == [Payment.objects.filter(order=order).latest("pk").reference]
