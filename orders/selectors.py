"""Reads of orders' data that other apps are given (registered from ``OrdersConfig.ready()``)."""

from __future__ import annotations

from orders.models import Product


def catalog_sample(tenant_id: int, limit: int) -> list[tuple[str, str]]:
    """A tenant's products as (name, description), oldest first: the AI profile's input."""
    rows = Product.objects.filter(tenant_id=tenant_id).order_by("id").values_list("name", "description")[:limit]
    return list(rows)
