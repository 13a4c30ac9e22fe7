"""The outbound webhook event types of orders (registered in ``OrdersConfig.ready()``):
what each means, an example of its ``data``, and the shape that keeps only those fields.

The outbox payloads are written by orders/services.py (orders), orders/payments.py
(refunds) and orders/exports.py (exports).
"""

from __future__ import annotations

from typing import Any

from tenants.event_types import Payload, pick
from webhooks.outbound.catalog import EventType

ORDER_FIELDS = ("order_id", "number", "total", "currency", "customer_email")
_order = pick(*ORDER_FIELDS)
_line = pick("product_id", "quantity")


def order_placed_data(payload: Payload) -> Payload:
    return {**_order(payload), "lines": [_line(line) for line in payload.get("lines", [])]}


_ORDER_EXAMPLE: dict[str, Any] = {
    "order_id": 1042,
    "number": "ORD-260314-9F2C61AB",
    "total": "37.50",
    "currency": "EUR",
    "customer_email": "jane.doe@example.com",
}

EVENT_TYPES = [
    EventType(
        "order.placed",
        "An order was placed: its stock is reserved and it waits for payment (status PENDING). "
        "Amounts are decimal strings in major units.",
        version=1,
        example={**_ORDER_EXAMPLE, "lines": [{"product_id": 7, "quantity": 2}, {"product_id": 9, "quantity": 1}]},
        shape=order_placed_data,
    ),
    EventType(
        "order.paid",
        "An order was paid (PENDING → PAID). Sent once per order, however often the provider reports the payment.",
        version=1,
        example=_ORDER_EXAMPLE,
        shape=_order,
    ),
    EventType(
        "order.cancelled",
        "An order was cancelled and its stock given back: by request, or released because it was not "
        "paid in time (the reason says which).",
        version=1,
        example={**_ORDER_EXAMPLE, "reason": "Not paid within 30 minutes"},
        shape=pick(*ORDER_FIELDS, "reason"),
    ),
    EventType(
        "payment.refunded",
        "A payment provider reported a refund for an order (once per refund). `amount` and `currency` "
        "are the refund's, which may differ from the order's total for a partial refund.",
        version=1,
        example={"order_id": 1042, "number": "ORD-260314-9F2C61AB", "amount": "37.50", "currency": "EUR"},
        shape=pick("order_id", "number", "amount", "currency"),
    ),
    EventType(
        "export.ready",
        "A sales export finished. `rows` is the number of orders in the file; fetch the download link "
        "(signed, expiring) from `status_url` with the API's authentication. Sent once per export.",
        version=1,
        example={
            "export_id": 311,
            "kind": "sales",
            "format": "xlsx",
            "date_from": "2026-03-01",
            "date_to": "2026-03-31",
            "rows": 1280,
            "status_url": "https://app.example.com/api/exports/311/",
        },
        shape=pick("export_id", "kind", "format", "date_from", "date_to", "rows", "status_url"),
    ),
]
