"""``link.scanned``: a tenant's redirect scans go to its webhook endpoints in
one outbox message a minute (``tenants.jobs.publish_link_scans``), never one
per hit. docs/tracking.md.

Each tenant has a cursor (``LinkScanCursor.last_id``): the last ``Interaction``
id published. A run takes, for each tenant with an endpoint that wants the
event, the redirects after its cursor (at most ``LIMIT``; the rest go next
run, and the message says so), publishes them and moves the cursor in one
transaction, under the cursor's row lock: a retried job or a second
scheduler finds the cursor moved and publishes nothing twice. A scan the
drain stores late gets a new, higher id: it goes in the next run.

Ids are handed out when a row is inserted, not when it commits: had one drain
committed id 11 while another still held id 10, a run reading up to 11 would
move the cursor past 10 for good. So a run first reads the highest id no
insert is still working below (``settled_ceiling``) and publishes only up to it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

from django.db import OperationalError, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

import outbox
from tenants.event_types import SCAN_FIELDS
from tenants.models import Interaction, LinkScanCursor, Tenant
from webhooks.models import WebhookEndpoint

log = logging.getLogger("tenants.tracking")

EVENT: Final = "link.scanned"
LIMIT: Final = 1000  # scans per message
LOCK_NOT_AVAILABLE: Final = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires


def subscribed_tenants() -> dict[int, datetime]:
    """Tenant id → when its first enabled endpoint that wants ``link.scanned``
    (by name, or every event: an empty list) was created."""
    wanting = WebhookEndpoint.objects.filter(enabled=True).filter(Q(event_types=[]) | Q(event_types__contains=[EVENT]))
    since = {row["tenant_id"]: row["since"] for row in wanting.values("tenant_id").annotate(since=Min("created_at"))}
    # Endpoints name tenants by id, without a foreign key: skip a deleted tenant's.
    alive = set(Tenant.objects.filter(pk__in=since).values_list("pk", flat=True))
    return {tenant_id: at for tenant_id, at in since.items() if tenant_id in alive}


def settled_ceiling(*, lock_timeout: str = "5s") -> int | None:
    """The highest ``Interaction`` id with no insert still in flight at or
    below it; None when the lock was not granted within ``lock_timeout``.

    A SHARE lock waits for every transaction inserting into the table (a
    drain batch: milliseconds) and admits no new one while held, so every id
    up to the maximum read under it is committed or rolled back: a guarantee
    from the database, not a guess at how late a commit can be. The timeout
    keeps the drain from queueing behind us while a long delete (a privacy
    erasure) holds the table; the next run tries again.
    """
    table = connection.ops.quote_name(Interaction._meta.db_table)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Local to this transaction; put back after, should it be a caller's savepoint.
            cursor.execute(
                "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)", [lock_timeout]
            )
            previous = cursor.fetchone()[0]
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608 - the model's table name
            row = cursor.fetchone()
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        log.warning("link.scanned: the interactions table stayed locked for %s; next run publishes", lock_timeout)
        return None
    return int(row[0]) if row else 0


def _cursor(tenant_id: int, since: datetime) -> LinkScanCursor:
    """The tenant's cursor, locked; created on its first run at its subscription
    (the scans from then on, not every scan it ever had)."""
    found = LinkScanCursor.objects.select_for_update().filter(pk=tenant_id).first()
    if found is not None:
        return found
    redirects = Interaction.objects.filter(tenant_id=tenant_id, kind=Interaction.Kind.REDIRECT)
    start = redirects.filter(occurred_at__lt=since).order_by("-pk").values_list("pk", flat=True).first() or 0
    # Two runs at once: the second insert waits for the first and does nothing,
    # and its lock below then reads the first run's moved cursor.
    LinkScanCursor.objects.bulk_create([LinkScanCursor(tenant_id=tenant_id, last_id=start)], ignore_conflicts=True)
    return LinkScanCursor.objects.select_for_update().get(pk=tenant_id)


def _scan(values: tuple[Any, ...]) -> dict[str, Any]:
    scan = dict(zip(SCAN_FIELDS, values, strict=True))
    scan["occurred_at"] = scan["occurred_at"].isoformat()
    return scan


def link_scans_publish_tenant(*, tenant_id: int, since: datetime, ceiling: int, limit: int = LIMIT) -> int:
    """Publish the tenant's redirects after its cursor, up to id ``ceiling``, in
    one ``link.scanned`` message, and move the cursor; the scans published."""
    with transaction.atomic():
        cursor = _cursor(tenant_id, since)
        rows = list(
            Interaction.objects.filter(
                tenant_id=tenant_id, kind=Interaction.Kind.REDIRECT, pk__gt=cursor.last_id, pk__lte=ceiling
            )
            .order_by("pk")
            .values_list("pk", *SCAN_FIELDS)[: limit + 1]
        )
        if not rows:
            return 0
        batch = rows[:limit]
        outbox.publish(
            EVENT,
            {"count": len(batch), "truncated": len(rows) > limit, "scans": [_scan(row[1:]) for row in batch]},
            aggregate=("tenant", tenant_id),
            tenant=tenant_id,
        )
        LinkScanCursor.objects.filter(pk=tenant_id).update(last_id=batch[-1][0], updated_at=timezone.now())
    return len(batch)


def link_scans_publish(*, limit: int = LIMIT) -> int:
    """One ``link.scanned`` message per subscribed tenant with new scans; the messages published.

    Each tenant in its own transaction: should one fail, the tenants before it
    stay published, and it and the rest go in the next run."""
    tenants = subscribed_tenants()
    if not tenants:
        return 0
    ceiling = settled_ceiling()
    if ceiling is None:
        return 0
    published = 0
    for tenant_id, since in sorted(tenants.items()):
        if link_scans_publish_tenant(tenant_id=tenant_id, since=since, ceiling=ceiling, limit=limit):
            published += 1
    return published
