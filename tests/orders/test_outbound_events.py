"""Orders' outbound webhook events: each published through the outbox in the
transaction of its change (none when that rolls back), shaped to its documented fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from redis import Redis

from orders.exports import export_generate
from orders.models import Order, Payment, SalesExport
from orders.payments import PaymentFacts, payment_apply
from orders.services import LineRequest, order_cancel, order_mark_paid, order_place
from outbox.models import OutboxMessage
from tests.factories import ProductFactory
from webhooks.outbound.catalog import event_type

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def rolled_back(action: Callable[[], Any]) -> None:
    with pytest.raises(Rollback), transaction.atomic():
        action()
        raise Rollback


def published(name: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(event_type=name).order_by("id"))


def shaped(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` a tenant's endpoint receives for this payload."""
    registered = event_type(name)
    assert registered is not None and registered.shape is not None and registered.version == 1
    return registered.shape(payload)


@pytest.fixture(autouse=True)
def site_url(settings: Any) -> None:
    settings.SITE_URL = "http://testserver"


def _order() -> Order:
    product = ProductFactory.create(stock_quantity=10, price=Decimal("12.50"))
    return order_place(tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, 2)])


def _order_data(order: Order) -> dict[str, Any]:
    return {"order_id": order.pk, "number": order.number, "total": "25.00", "currency": "USD",
            "customer_email": "c@example.com"}  # fmt: skip


def test_order_events_are_published_with_their_change_and_shaped_to_their_documented_fields() -> None:
    product = ProductFactory.create(stock_quantity=10, price=Decimal("12.50"))
    rolled_back(lambda: order_place(tenant=product.tenant, customer_email="c@example.com",
                                    lines=[LineRequest(product.pk, 2)]))  # fmt: skip
    order, other = _order(), _order()
    rolled_back(lambda: order_mark_paid(order_id=order.pk))
    rolled_back(lambda: order_cancel(order_id=other.pk, reason="no"))
    assert len(published("order.placed")) == 2 and published("order.paid") == published("order.cancelled") == []

    order_mark_paid(order_id=order.pk)
    order_cancel(order_id=other.pk, reason="customer changed their mind")
    [placed, _] = published("order.placed")
    [paid] = published("order.paid")
    [cancelled] = published("order.cancelled")
    assert [m.tenant_id for m in (placed, paid, cancelled)] == [order.tenant_id, order.tenant_id, other.tenant_id]
    line = {"product_id": order.items.get().product_id, "quantity": 2}
    assert placed.payload == shaped("order.placed", placed.payload) == {**_order_data(order), "lines": [line]}
    assert paid.payload == shaped("order.paid", paid.payload) == _order_data(order)
    cancelled_data = {**_order_data(other), "reason": "customer changed their mind"}
    assert cancelled.payload == shaped("order.cancelled", cancelled.payload) == cancelled_data
    # A stale order's release says so in the payload; the tenant gets the documented fields only.
    assert shaped("order.cancelled", {**cancelled.payload, "released": True}) == cancelled_data


def _refund(order: Order, reference: str = "re_1") -> str:
    facts = PaymentFacts(Payment.Kind.REFUNDED, order.pk, Decimal("10.00"), "USD", reference)
    with transaction.atomic():  # payment_apply runs in the outbox delivery's transaction
        return payment_apply(provider="standard", facts=facts)


def test_a_recorded_refund_publishes_payment_refunded_once() -> None:
    order = _order()
    with transaction.atomic():
        payment_apply(provider="standard", facts=PaymentFacts(Payment.Kind.SUCCEEDED, order.pk, Decimal("25.00"),
                                                              "USD", "pay_1"))  # fmt: skip
    rolled_back(lambda: _refund(order))
    assert published("payment.refunded") == []
    assert not Payment.objects.filter(kind=Payment.Kind.REFUNDED).exists()

    _refund(order)  # a partial refund: recorded, order left as it was, still announced
    assert _refund(order) == "payment already recorded"  # the provider's retry
    [message] = published("payment.refunded")
    assert message.tenant_id == order.tenant_id
    assert message.payload == {"order_id": order.pk, "number": order.number, "amount": "10.00", "currency": "USD"}


def test_a_finished_export_publishes_export_ready_once(redis_conn: Redis) -> None:
    order = _order()
    export = SalesExport.objects.create(
        tenant=order.tenant, date_from=date(2000, 1, 1), date_to=date(2999, 1, 1), format="csv"
    )
    rolled_back(lambda: export_generate(tenant_id=order.tenant_id, export_id=export.pk))
    assert published("export.ready") == []
    assert SalesExport.objects.get(pk=export.pk).finished_at is None

    export_generate(tenant_id=order.tenant_id, export_id=export.pk)
    export_generate(tenant_id=order.tenant_id, export_id=export.pk)  # a retry: a new file, no second event
    [message] = published("export.ready")
    assert message.tenant_id == order.tenant_id
    status_url = f"http://testserver/api/exports/{export.pk}/"
    assert message.payload == {"export_id": export.pk, "kind": "sales", "format": "csv", "date_from": "2000-01-01",
                               "date_to": "2999-01-01", "rows": 1, "status_url": status_url}  # fmt: skip
    assert "/d/" not in str(message.payload)  # no signed download link travels with the event


def test_the_status_url_answers_the_tenant_with_the_download_link(redis_conn: Redis, client: Client) -> None:
    """What export.ready points at is the authenticated status endpoint, which hands out a fresh link."""
    from rest_framework.authtoken.models import Token

    from tenants.models import TenantMember
    from tests.factories import UserFactory

    order = _order()
    export = SalesExport.objects.create(tenant=order.tenant, date_from=date(2000, 1, 1), date_to=date(2999, 1, 1))
    export_generate(tenant_id=order.tenant_id, export_id=export.pk)
    user = UserFactory.create()
    TenantMember.objects.create(tenant=order.tenant, user=user, role=TenantMember.Role.OWNER)
    token = Token.objects.create(user=user)
    [message] = published("export.ready")
    body = client.get(message.payload["status_url"], headers={"Authorization": f"Token {token.key}"}).json()
    assert body["status"] == "done" and "/d/" in body["download_url"]
