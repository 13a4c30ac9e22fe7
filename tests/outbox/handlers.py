"""Test handlers with a database effect, so "exactly once" can be counted."""

from __future__ import annotations

import time

from django.db.models import F

from orders.models import Product
from outbox.routes import Event
from queueing.definitions import PermanentError


def add_stock(event: Event) -> None:
    Product.objects.filter(pk=event.payload["product_id"]).update(
        stock_quantity=F("stock_quantity") + event.payload["n"]
    )


def add_stock_twice(event: Event) -> None:
    Product.objects.filter(pk=event.payload["product_id"]).update(
        stock_quantity=F("stock_quantity") + 2 * event.payload["n"]
    )


def reject(event: Event) -> None:
    raise PermanentError(f"message {event.id} is not acceptable")


def add_stock_or_fail(event: Event) -> None:
    """Adds, then fails (rolling the addition back) when the payload says so:
    ``"fail": "retry"`` is an error a retry may fix, ``"permanent"`` one it cannot."""
    add_stock(event)
    if event.payload.get("fail") == "permanent":
        raise PermanentError(f"message {event.id} is not acceptable")
    if event.payload.get("fail") == "retry":
        raise RuntimeError(f"message {event.id}: the provider is down")


def add_stock_slowly(event: Event) -> None:
    """Long enough for a kill or a time budget to land between messages."""
    time.sleep(float(event.payload.get("sleep", 0)))
    add_stock(event)
