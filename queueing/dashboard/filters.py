"""The dashboard's query string (queue, job, tenant, search, hours, cursor) and
the failed-jobs list it selects: 50 at a time by keyset on the ledger's
indexes, so a refresh never counts or offsets the whole table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.http import QueryDict

from queueing import selectors
from queueing.dashboard.formatting import EPOCH
from queueing.models import FailedJob

PAGE_SIZE = 50
CHART_HOURS = (1, 6, 24, 168)


@dataclass(frozen=True)
class Filters:
    """The dashboard's query string: search text, failed-job filters, the
    keyset cursor into the failed list, the tenant and the chart range."""

    q: str = ""
    queue: str = ""
    job: str = ""
    tenant: int | None = None
    before: tuple[int, int] | None = None  # (failed_at in µs since the epoch, id) of the last row shown
    hours: int = 24

    @classmethod
    def from_query(cls, query: QueryDict) -> Filters:
        queue = query.get("queue", "").strip()
        tenant = query.get("tenant", "").strip()
        hours = query.get("hours", "").strip()
        return cls(
            q=query.get("q", "").strip()[:200],
            queue=queue if queue in selectors.queue_names() else "",
            job=query.get("job", "").strip()[:255],
            tenant=int(tenant) if tenant.isdigit() else None,
            before=_cursor(query.get("before", "")),
            hours=int(hours) if hours.isdigit() and int(hours) in CHART_HOURS else 24,
        )

    def as_query(self, **changes: Any) -> str:
        """This view's query string with ``changes`` applied (cursor dropped unless given)."""
        merged = replace(self, before=None)
        merged = replace(merged, **changes)
        pairs = {
            "q": merged.q,
            "queue": merged.queue,
            "job": merged.job,
            "tenant": "" if merged.tenant is None else str(merged.tenant),
            "before": f"{merged.before[0]}.{merged.before[1]}" if merged.before else "",
            "hours": "" if merged.hours == 24 else str(merged.hours),
        }
        return urlencode({k: v for k, v in pairs.items() if v})

    @property
    def any_failed_filter(self) -> bool:
        return bool(self.q or self.queue or self.job or self.tenant is not None)


def _cursor(raw: str) -> tuple[int, int] | None:
    stamp, _, pk = raw.partition(".")
    return (int(stamp), int(pk)) if stamp.isdigit() and pk.isdigit() else None


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)  # exact integer, unlike timestamp() * 1e6


def failed_queryset(filters: Filters) -> QuerySet[FailedJob]:
    rows = FailedJob.objects.all()
    if filters.queue:
        rows = rows.filter(queue=filters.queue)
    if filters.job:
        rows = rows.filter(job_name=filters.job)
    if filters.tenant is not None:
        rows = rows.filter(tenant_id=filters.tenant)
    if filters.q:
        text = filters.q
        match = (
            Q(job_name__icontains=text)
            | Q(exception_class__icontains=text)
            | Q(message__icontains=text)
            | Q(job_id=text)
        )
        if text.isdigit():
            match |= Q(pk=int(text))
        rows = rows.filter(match)
    return rows


def failed_page(filters: Filters) -> tuple[list[FailedJob], str | None]:
    """Newest first, PAGE_SIZE rows after the cursor, and the next page's query
    string (None on the last page). Keyset, not OFFSET/COUNT: page 2,000 of a
    100k-row ledger costs what page 1 does, and no refresh counts the ledger."""
    rows = failed_queryset(filters).defer("traceback", "kwargs")
    if filters.before is not None:
        stamp, pk = filters.before
        at = EPOCH + timedelta(microseconds=stamp)
        rows = rows.filter(Q(failed_at__lt=at) | Q(failed_at=at, pk__lt=pk))
    page = list(rows.order_by("-failed_at", "-pk")[: PAGE_SIZE + 1])
    if len(page) <= PAGE_SIZE:
        return page, None
    last = page[PAGE_SIZE - 1]
    return page[:PAGE_SIZE], filters.as_query(before=(_micros(last.failed_at), last.pk))
