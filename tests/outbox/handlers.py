"""Test handlers with a database effect, so "exactly once" can be counted."""

from __future__ import annotations

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
