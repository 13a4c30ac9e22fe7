"""Plumbing for the outbound-webhook tests: a tenant with endpoints, and the
relay and real workers run until every delivery has settled."""

from __future__ import annotations

import time
from decimal import Decimal

from orders.models import Order
from orders.services import LineRequest, order_place
from outbox.models import OutboxMessage
from outbox.services import outbox_relay_drain
from tenants.models import Tenant
from tests.factories import ProductFactory
from tests.queueing.conftest import run_worker
from webhooks.outbound.models import Delivery, WebhookEndpoint
from webhooks.outbound.services import endpoint_create


def endpoint(tenant: Tenant, url: str, *types: str) -> tuple[WebhookEndpoint, str]:
    return endpoint_create(tenant_id=tenant.pk, url=url, event_types=list(types))


def place_order(tenant: Tenant | None = None) -> Order:
    product = ProductFactory.create(
        stock_quantity=100, price=Decimal("12.50"), **({"tenant": tenant} if tenant else {})
    )
    return order_place(tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, 2)])


def settled() -> bool:
    return (
        not OutboxMessage.objects.filter(status__in=["pending", "dispatched"]).exists()
        and not Delivery.objects.filter(status=Delivery.Status.PENDING).exists()
    )


def settle(rounds: int = 8) -> None:
    """Relay passes and burst workers (high, default) until nothing is left pending."""
    for _ in range(rounds):
        outbox_relay_drain()
        result = run_worker("high", "default", "--burst")
        assert result.returncode == 0, result.stderr[-3000:]
        if settled():
            return
        time.sleep(0.2)
    raise AssertionError(
        f"not settled: {list(Delivery.objects.filter(status='pending').values('id', 'attempts', 'next_attempt_at'))}"
    )
