"""report.ready: published with the finished report, in its transaction, once per report."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import transaction
from pypdf import PdfReader
from redis import Redis

from analytics.models import MonthlyReport
from analytics.reports import report_generate
from outbox.models import OutboxMessage
from tests.factories import TenantFactory
from webhooks.outbound.catalog import event_type

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def test_a_finished_report_publishes_report_ready_once(redis_conn: Redis, settings: Any) -> None:
    settings.SITE_URL = "http://testserver"
    tenant = TenantFactory.create()
    report = MonthlyReport.objects.create(tenant=tenant, month=date(2026, 3, 1))
    with pytest.raises(Rollback), transaction.atomic():
        report_generate(tenant_id=tenant.pk, report_id=report.pk)
        raise Rollback
    assert not OutboxMessage.objects.filter(event_type="report.ready").exists()
    assert MonthlyReport.objects.get(pk=report.pk).status == MonthlyReport.Status.QUEUED

    report_generate(tenant_id=tenant.pk, report_id=report.pk)
    report.refresh_from_db()
    with report.file.open("rb") as pdf:
        size, pages = report.file.size, len(PdfReader(pdf).pages)
    report_generate(tenant_id=tenant.pk, report_id=report.pk)  # a retry: the file replaced, no second event
    [message] = OutboxMessage.objects.filter(event_type="report.ready")
    expected = {"report_id": report.pk, "month": "2026-03", "pages": pages, "size": size,
                "status_url": f"http://testserver/api/reports/{report.pk}/"}  # fmt: skip
    assert message.tenant_id == tenant.pk and message.payload == expected
    registered = event_type("report.ready")
    assert registered is not None and registered.shape is not None
    assert registered.shape({**message.payload, "file": "reports/x.pdf"}) == expected
