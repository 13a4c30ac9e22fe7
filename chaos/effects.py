"""Countable effects: one product per unit of work, stock 0 → 1 when done.

After a scenario, a product still at 0 is a lost effect and one above 1 an
effect done twice; both are counted in PostgreSQL, which survives every fault
the scenarios inject.
"""

from __future__ import annotations

from django.db import transaction

import outbox
from orders.models import Product
from outbox.models import OutboxMessage
from tenants.models import Tenant
from tests.factories import ProductFactory, TenantFactory


def products(n: int, tenant: Tenant | None = None) -> list[int]:
    """``n`` products at stock 0, in one tenant (a new one by default), created in one INSERT."""
    tenant = tenant or TenantFactory.create()
    built = ProductFactory.build_batch(n, tenant=tenant, stock_quantity=0)
    return [p.pk for p in Product.objects.bulk_create(built)]


def tally(ids: list[int]) -> tuple[int, int]:
    """(lost, done twice) among products whose stock should now be exactly 1."""
    values = list(Product.objects.filter(pk__in=ids).values_list("stock_quantity", flat=True))
    return sum(v == 0 for v in values), sum(v > 1 for v in values)


def done(ids: list[int]) -> bool:
    return not Product.objects.filter(pk__in=ids, stock_quantity=0).exists()


def some_done(ids: list[int], n: int) -> bool:
    """At least ``n`` effects done: the work is under way."""
    return Product.objects.filter(pk__in=ids, stock_quantity__gt=0).count() >= n


def publish_tallies(ids: list[int], sleep: float = 0.0) -> None:
    """One ``chaos.tally`` message per product, all in one transaction."""
    with transaction.atomic():
        for pid in ids:
            outbox.publish("chaos.tally", {"product_id": pid, "sleep": sleep}, aggregate=("product", pid))


def publish_tally(product_id: int, sleep: float = 0.0) -> OutboxMessage:
    """One ``chaos.tally`` outbox message (its own transaction, as a service would)."""
    with transaction.atomic():
        return outbox.publish(
            "chaos.tally", {"product_id": product_id, "sleep": sleep}, aggregate=("product", product_id)
        )


def describe_missing(ids: list[int], limit: int = 10) -> str:
    """What became of the work behind products still at 0 (for a failure message)."""
    missing = list(Product.objects.filter(pk__in=ids, stock_quantity=0).values_list("pk", flat=True)[:limit])
    lines = [f"{len(missing)}+ effects missing; first: {missing}"]
    for message in OutboxMessage.objects.filter(payload__product_id__in=missing):
        lines.append(
            f"  message {message.pk}: {message.status} attempts={getattr(message, 'attempts', '?')} "
            f"error={getattr(message, 'last_error', '')!r:.200}"
        )
    return "\n".join(lines)
