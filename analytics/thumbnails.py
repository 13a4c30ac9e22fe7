"""GenerateReportThumbnail: a monthly report's first page as a PNG (VeloxFactory's
thumbnails, seed 003), queued the moment the PDF is stored, on logical queue
``thumbnails`` (`high` in the vito, veloxfactory and qr layouts), so a long
purge or export on `default` never delays it. docs/reports.md.
"""

from __future__ import annotations

import logging
from io import BytesIO

from django.core.files.base import ContentFile
from django.utils import timezone

from analytics.models import MonthlyReport
from tenants.downloads import Download

log = logging.getLogger(__name__)

THUMBNAIL_WIDTH = 400  # pixels; the height follows the page


def render_thumbnail(pdf: bytes, width: int = THUMBNAIL_WIDTH) -> bytes:
    """Page one of ``pdf`` rendered ``width`` pixels wide, as PNG bytes."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        try:
            image = page.render(scale=width / page.get_width()).to_pil()
        finally:
            page.close()
    finally:
        document.close()
    out = BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def thumbnail_generate(*, tenant_id: int, report_id: int) -> MonthlyReport | None:
    """Render and store the thumbnail of a finished report. A report that is gone, not
    finished, or already has its thumbnail is left alone (a retry or a second request
    does nothing twice)."""
    report = (
        MonthlyReport.objects.filter(pk=report_id, tenant_id=tenant_id, status=MonthlyReport.Status.DONE)
        .exclude(file="")
        .first()
    )
    if report is None or report.thumbnail:
        return report
    source, version = report.file.name, report.finished_at
    with report.file.open("rb") as fh:
        png = render_thumbnail(fh.read())
    stored = report.thumbnail.storage.save(f"reports/{tenant_id}/thumbnails/report-{report.pk}.png", ContentFile(png))
    # Only onto the PDF it was made from (same name and render time: a regenerated
    # report may reuse the name); a report regenerated meanwhile gets its own.
    updated = MonthlyReport.objects.filter(pk=report.pk, file=source, finished_at=version, thumbnail="").update(
        thumbnail=stored
    )
    if not updated:
        report.thumbnail.storage.delete(stored)
        log.info("thumbnail of report %s dropped: the report changed while it rendered", report.pk)
        return report
    log.info("thumbnail of report %s rendered, %d bytes, %s", report.pk, len(png), timezone.now().isoformat())
    report.refresh_from_db()
    return report


def thumbnail_request(report: MonthlyReport) -> bool:
    """Queue the thumbnail of a finished report that has none; False when there is nothing to queue."""
    from analytics.jobs import generate_report_thumbnail

    if report.status != MonthlyReport.Status.DONE or report.thumbnail or not report.file:
        return False
    generate_report_thumbnail.dispatch(report.tenant_id, report.pk)
    return True


def resolve_thumbnail_download(object_id: int, tenant_id: int) -> Download | None:
    report = MonthlyReport.objects.filter(pk=object_id, tenant_id=tenant_id).exclude(thumbnail="").first()
    if report is None:
        return None
    return Download(
        path=report.thumbnail.name, filename=f"report-{report.pk}.png", content_type="image/png", inline=True
    )
