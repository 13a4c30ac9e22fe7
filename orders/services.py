"""Writes on orders and stock. Every stock change is a conditional UPDATE.

Stock is reserved when an order is placed and goes back when a PENDING order
is cancelled. Both are single SQL statements guarded by a WHERE clause, so two
requests racing for the last unit cannot both win and a cancel cannot restore
stock twice, whatever the isolation level or the number of workers.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

import outbox
from orders.models import Order, OrderItem, Product
from outbox.services import outbox_publish_many
from tenants.models import Tenant


class OrderError(Exception):
    """A business rule refused the change; nothing was written."""


class InsufficientStock(OrderError):
    def __init__(self, *, sku: str, requested: int, available: int) -> None:
        self.sku, self.requested, self.available = sku, requested, available
        super().__init__(f"not enough stock for {sku}: {requested} requested, {available} available")


class UnknownProduct(OrderError):
    pass


class OrderNotPending(OrderError):
    def __init__(self, order: Order) -> None:
        self.order = order
        super().__init__(f"order {order.number} is {order.status}, not PENDING")


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


def _new_order_number() -> str:
    # Random rather than sequential: numbers are shown to customers and must
    # not reveal a tenant's sales volume. Unique per tenant by constraint.
    return f"ORD-{timezone.now():%y%m%d}-{secrets.token_hex(4).upper()}"


@transaction.atomic
def order_place(
    *,
    tenant: Tenant,
    customer_email: str,
    lines: Iterable[LineRequest],
    currency: str = "USD",
) -> Order:
    """Create a PENDING order and reserve its stock, all or nothing."""
    wanted: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.quantity <= 0:
            raise OrderError(f"quantity must be positive, got {line.quantity} for product {line.product_id}")
        wanted[line.product_id] += line.quantity
    if not wanted:
        raise OrderError("an order needs at least one line")

    products = {p.pk: p for p in Product.objects.filter(tenant=tenant, pk__in=wanted)}
    missing = sorted(set(wanted) - set(products))
    if missing:
        raise UnknownProduct(f"no such product for tenant {tenant.slug}: {missing}")

    # Reserve in id order so concurrent orders take row locks in the same
    # order and cannot deadlock each other.
    for product_id in sorted(wanted):
        quantity = wanted[product_id]
        reserved = Product.objects.filter(pk=product_id, stock_quantity__gte=quantity).update(
            stock_quantity=F("stock_quantity") - quantity
        )
        if not reserved:
            available = Product.objects.values_list("stock_quantity", flat=True).get(pk=product_id)
            # Raising rolls back the reservations made so far in this order.
            raise InsufficientStock(sku=products[product_id].sku, requested=quantity, available=available)

    total = sum((products[pid].price * qty for pid, qty in wanted.items()), Decimal("0.00"))
    order = Order.objects.create(
        tenant=tenant,
        number=_new_order_number(),
        customer_email=customer_email,
        total=total,
        currency=currency,
        created_at=timezone.now(),
    )
    OrderItem.objects.bulk_create(
        OrderItem(order=order, product_id=pid, quantity=qty, unit_price=products[pid].price)
        for pid, qty in sorted(wanted.items())
    )
    outbox.publish(
        "order.placed",
        {**_order_payload(order), "lines": [{"product_id": p, "quantity": q} for p, q in sorted(wanted.items())]},
        aggregate=("order", order.pk),
        tenant=tenant.pk,
    )
    return order


def _order_payload(order: Order) -> dict[str, object]:
    return {
        "order_id": order.pk,
        "number": order.number,
        "total": str(order.total),
        "currency": order.currency,
        "customer_email": order.customer_email,
    }


@transaction.atomic
def order_mark_paid(*, order_id: int) -> Order:
    """PENDING → PAID. Paying an already paid order is a no-op (webhooks repeat)."""
    now = timezone.now()
    changed = Order.objects.filter(pk=order_id, status=Order.Status.PENDING).update(
        status=Order.Status.PAID, paid_at=now
    )
    order = Order.objects.get(pk=order_id)
    if not changed and order.status != Order.Status.PAID:
        raise OrderNotPending(order)
    if changed:
        outbox.publish("order.paid", _order_payload(order), aggregate=("order", order.pk), tenant=order.tenant_id)
    return order


@transaction.atomic
def order_cancel(*, order_id: int, reason: str) -> bool:
    """PENDING → CANCELLED and give the reserved stock back, exactly once.

    Returns False when the order was no longer PENDING (already cancelled,
    or paid in the meantime): nothing changes then.
    """
    now = timezone.now()
    # The status guard is the "claim": of two concurrent cancels (or a cancel
    # racing a payment) exactly one UPDATE matches the PENDING row.
    claimed = Order.objects.filter(pk=order_id, status=Order.Status.PENDING).update(
        status=Order.Status.CANCELLED, cancelled_at=now, cancel_reason=reason[:200], stock_restored_at=now
    )
    if not claimed:
        return False
    _restore_stock(order_ids=[order_id])
    order = Order.objects.get(pk=order_id)
    outbox.publish(
        "order.cancelled",
        {**_order_payload(order), "reason": order.cancel_reason},
        aggregate=("order", order.pk),
        tenant=order.tenant_id,
    )
    return True


def _restore_stock(*, order_ids: list[int]) -> None:
    """Add the items of these (just claimed) orders back to stock, one UPDATE per product."""
    per_product: dict[int, int] = defaultdict(int)
    for product_id, quantity in OrderItem.objects.filter(order_id__in=order_ids).values_list("product_id", "quantity"):
        per_product[product_id] += quantity
    for product_id in sorted(per_product):
        Product.objects.filter(pk=product_id).update(stock_quantity=F("stock_quantity") + per_product[product_id])


@dataclass(frozen=True)
class ReleaseResult:
    released: int
    order_ids: list[int]


def order_release_stale(
    *, older_than: timedelta, tenant_id: int | None = None, batch_size: int = 1000, dry_run: bool = False
) -> ReleaseResult:
    """Cancel PENDING orders older than ``older_than`` and give their stock back.

    Set-based: per batch of ``batch_size`` orders, one UPDATE claims and
    cancels them, one locks the affected products, one restores stock, one
    inserts the outbox events — a handful of statements whatever the count.
    Safe against a payment at the same moment: orders are claimed with
    ``FOR UPDATE SKIP LOCKED`` and the UPDATE re-checks ``status = 'PENDING'``,
    while ``order_mark_paid`` is a conditional UPDATE of the same row — one
    of the two wins, the other changes nothing.
    """
    cutoff = timezone.now() - older_than
    if dry_run:
        rows = Order.objects.filter(status=Order.Status.PENDING, created_at__lt=cutoff)
        if tenant_id is not None:
            rows = rows.filter(tenant_id=tenant_id)
        ids = list(rows.values_list("id", flat=True))
        return ReleaseResult(len(ids), ids)
    reason = f"Not paid within {int(older_than.total_seconds() // 60)} minutes"
    released: list[int] = []
    while True:
        batch = _release_batch(cutoff=cutoff, tenant_id=tenant_id, batch_size=batch_size, reason=reason)
        released.extend(batch)
        if len(batch) < batch_size:
            return ReleaseResult(len(released), released)


@transaction.atomic
def _release_batch(*, cutoff: datetime, tenant_id: int | None, batch_size: int, reason: str) -> list[int]:
    tenant_filter = "AND tenant_id = %s" if tenant_id is not None else ""
    params: list[Any] = [cutoff, *([tenant_id] if tenant_id is not None else []), batch_size]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE orders_order o
               SET status = 'CANCELLED', cancelled_at = now(), cancel_reason = %s, stock_restored_at = now()
             WHERE o.id IN (
                   SELECT id FROM orders_order
                    WHERE status = 'PENDING' AND created_at < %s {tenant_filter}
                    ORDER BY created_at
                    LIMIT %s
                    FOR UPDATE SKIP LOCKED)
               AND o.status = 'PENDING'
         RETURNING o.id, o.tenant_id, o.number, o.total, o.currency, o.customer_email
            """,  # noqa: S608 - the only interpolation is a fixed SQL fragment
            [reason, *params],
        )
        orders = cursor.fetchall()
        if not orders:
            return []
        ids = [row[0] for row in orders]
        # Lock products in id order, as order_place does, so the two cannot deadlock.
        cursor.execute(
            "SELECT id FROM orders_product WHERE id IN"
            " (SELECT DISTINCT product_id FROM orders_orderitem WHERE order_id = ANY(%s)) ORDER BY id FOR UPDATE",
            [list(ids)],
        )
        cursor.execute(
            "UPDATE orders_product p SET stock_quantity = p.stock_quantity + s.quantity"
            " FROM (SELECT product_id, sum(quantity) AS quantity FROM orders_orderitem"
            "       WHERE order_id = ANY(%s) GROUP BY product_id) s"
            " WHERE p.id = s.product_id",
            [ids],
        )
    outbox_publish_many(
        event_type="order.cancelled",
        events=[
            (
                ("order", oid),
                tid,
                {
                    "order_id": oid,
                    "number": number,
                    "total": str(total),
                    "currency": currency,
                    "customer_email": email,
                    "reason": reason,
                    "released": True,
                },
            )
            for oid, tid, number, total, currency, email in orders
        ],
    )
    return ids
