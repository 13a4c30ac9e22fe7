"""Background jobs of the orders side."""

from __future__ import annotations

from datetime import timedelta

from queueing.definitions import job


@job(queue="default", timeout=600, tries=3, backoff=[30, 120], unique_for=900)
def release_stale_orders(tenant_id: int | None = None, older_than_minutes: int = 30) -> int:
    """ReleaseStaleOrders: cancel PENDING orders older than N minutes and restore stock.

    Global with ``tenant_id=None``; unique per tenant scope for 15 minutes (the
    schedule's interval), so overlapping runs cannot pile up.
    """
    from orders.services import order_release_stale

    return order_release_stale(older_than=timedelta(minutes=older_than_minutes), tenant_id=tenant_id).released
