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


def _export_failed(exc: BaseException, tenant_id: int, export_id: int) -> None:
    from orders.models import SalesExport

    SalesExport.objects.filter(pk=export_id).update(status=SalesExport.Status.FAILED, error=str(exc)[:2000])


@job(queue="default", timeout=1800, tries=2, backoff=[60], on_failure=_export_failed)
def generate_sales_export(tenant_id: int, export_id: int) -> None:
    """GenerateSalesExport: stream the tenant's orders into an XLSX/CSV file and e-mail the link."""
    from orders.exports import export_generate

    export_generate(tenant_id=tenant_id, export_id=export_id)


@job(queue="default", timeout=120, tries=1)
def generate_product_blurhash(tenant_id: int, product_id: int) -> str | None:
    """GenerateProductBlurhash: placeholder for a product image, after the upload returned."""
    from orders.media import product_compute_blurhash

    return product_compute_blurhash(tenant_id=tenant_id, product_id=product_id)
