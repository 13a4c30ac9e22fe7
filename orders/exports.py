"""GenerateSalesExport: a tenant's orders in a date range, XLSX or CSV.

Rows stream from PostgreSQL in chunks (a server-side cursor) into openpyxl's
write-only workbook (or the csv module), written to a temporary file and then
stored through Django's storage API: memory stays flat whatever the size.
Progress (rows done / total) is written to the export row every chunk.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

import outbox
from orders.models import Order, SalesExport
from tenants.downloads import Download, send_download_link
from tenants.models import Tenant

log = logging.getLogger(__name__)

CHUNK = 2000
COLUMNS = ["Number", "Created at", "Status", "Customer e-mail", "Total", "Currency", "Paid at", "Items"]


def export_request(
    *, tenant: Tenant, date_from: date, date_to: date, fmt: str = "xlsx", email: str = "", user_id: int | None = None
) -> SalesExport:
    """Record the request and dispatch the job after commit."""
    from orders.jobs import generate_sales_export

    if date_from > date_to:
        raise ValueError("date_from is after date_to")
    if date_to >= date.max:  # _window needs the day after date_to
        raise ValueError(f"date_to must be before {date.max.isoformat()}")
    if fmt not in SalesExport.Format.values:
        raise ValueError(f"format must be one of {', '.join(SalesExport.Format.values)}")
    with transaction.atomic():
        export = SalesExport.objects.create(
            tenant=tenant, date_from=date_from, date_to=date_to, format=fmt, email=email, requested_by_id=user_id
        )
        generate_sales_export.dispatch(tenant.pk, export.pk)
    return export


def _window(export: SalesExport) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    start = datetime.combine(export.date_from, time.min, tzinfo=tz)
    return start, datetime.combine(export.date_to + timedelta(days=1), time.min, tzinfo=tz)


def _rows(export: SalesExport) -> Any:
    start, end = _window(export)
    from django.db.models import Count

    return (
        Order.objects.filter(tenant_id=export.tenant_id, created_at__gte=start, created_at__lt=end)
        .order_by("created_at", "id")
        .annotate(item_count=Count("items"))
        .values_list("number", "created_at", "status", "customer_email", "total", "currency", "paid_at", "item_count")
    )


def export_generate(*, tenant_id: int, export_id: int) -> SalesExport | None:
    """Build the file. A deleted export (or another tenant's id) is a no-op."""
    export = SalesExport.objects.filter(pk=export_id, tenant_id=tenant_id).first()
    if export is None:
        return None
    rows = _rows(export)
    total = rows.count()
    SalesExport.objects.filter(pk=export.pk).update(status=SalesExport.Status.RUNNING, rows_total=total, rows_done=0)
    suffix = f".{export.format}"
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
        path = tmp.name
    try:
        done = _write(export.format, path, rows.iterator(chunk_size=CHUNK), export.pk)
        name = f"exports/{tenant_id}/sales-{export.pk}-{export.date_from}-{export.date_to}{suffix}"
        with open(path, "rb") as fh:
            stored = default_storage.save(name, File(fh))
    finally:
        os.unlink(path)
    export = _finish(export.pk, rows=done, file=stored)
    _notify(export)
    return export


def _finish(export_id: int, *, rows: int, file: str) -> SalesExport:
    """Done, and ``export.ready`` in the same transaction, once per export: a run
    again (a retry after the e-mail failed) finds it finished before and says nothing."""
    with transaction.atomic():
        export = SalesExport.objects.select_for_update().get(pk=export_id)
        announced = export.finished_at is not None
        export.status, export.rows_done, export.file = SalesExport.Status.DONE, rows, file
        export.finished_at = timezone.now()
        export.save(update_fields=["status", "rows_done", "file", "finished_at"])
        if not announced:
            # The status URL, not a download link: a signed link is a bearer
            # credential that expires, and would be stored with the message.
            status_url = settings.SITE_URL.rstrip("/") + reverse("api-export-detail", args=[export.pk])
            outbox.publish(
                "export.ready",
                {
                    "export_id": export.pk,
                    "kind": "sales",
                    "format": export.format,
                    "date_from": export.date_from.isoformat(),
                    "date_to": export.date_to.isoformat(),
                    "rows": rows,
                    "status_url": status_url,
                },
                aggregate=("export", export.pk),
                tenant=export.tenant_id,
            )
    return export


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        # Excel has no time zones: write local wall time, naive.
        return timezone.localtime(value).replace(tzinfo=None)
    return value


def _write(fmt: str, path: str, rows: Any, export_id: int) -> int:
    done = 0

    def progress() -> None:
        SalesExport.objects.filter(pk=export_id).update(rows_done=done)

    if fmt == "csv":
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            for row in rows:
                writer.writerow([_cell(v) for v in row])
                done += 1
                if done % CHUNK == 0:
                    progress()
        return done
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Sales")
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append([_cell(v) for v in row])
        done += 1
        if done % CHUNK == 0:
            progress()
    workbook.save(path)
    return done


def _notify(export: SalesExport) -> None:
    recipient = export.email or (export.requested_by.email if export.requested_by else "")
    if not recipient:
        return
    send_download_link(
        kind="export",
        object_id=export.pk,
        tenant_id=export.tenant_id,
        to=recipient,
        template="export_ready",
        subject=f"Your sales export ({export.date_from} – {export.date_to}) is ready",
        context={"export": export},
    )


def resolve_export_download(object_id: int, tenant_id: int) -> Download | None:
    export = SalesExport.objects.filter(pk=object_id, tenant_id=tenant_id, status=SalesExport.Status.DONE).first()
    if export is None or not export.file:
        return None
    content_type = (
        "text/csv" if export.format == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Download(path=export.file, filename=os.path.basename(export.file), content_type=content_type)


def export_still_needed(now: datetime) -> Q:
    """Exports the purge must keep: still being made, or one whose download link may still work."""
    link_valid_since = now - timedelta(seconds=settings.DOWNLOAD_LINK_LIFETIME)
    return Q(status__in=[SalesExport.Status.QUEUED, SalesExport.Status.RUNNING]) | Q(finished_at__gte=link_valid_since)
