"""Erasing one visitor's tracking hits on a tenant's request (``POST /api/privacy/erase/``).

A job deletes the tenant's Interaction rows with that visitor hash in short
batches. Hits still in the Redis buffer reach PostgreSQL only when the drain
gets to them, so the job runs a final pass ``SECOND_PASS`` later, once the
buffer holds no hit older than the request (it waits up to ``MAX_WAITS``
more passes for a drain that is behind), and only then marks the request
done. ``erased`` counts every pass.
docs/tracking.md "Privacy".
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from queueing.definitions import job
from tenants.models import ErasureRequest, Interaction, Tenant

log = logging.getLogger(__name__)

VISITOR = re.compile(r"^[0-9a-f]{16}$")  # tracking/hits.py: visitor_hash
SECOND_PASS = timedelta(minutes=2)  # past the next drain of the buffer
MAX_WAITS = 30  # final passes put off while the buffer still holds older hits (an hour)
BATCH = 5000


def erasure_request(*, tenant: Tenant, visitor: str, user_id: int | None = None) -> ErasureRequest:
    """Record the request and queue its job after commit; a malformed hash is a ValueError."""
    if not VISITOR.match(visitor):
        raise ValueError("visitor must be a visitor hash: 16 lowercase hexadecimal characters")
    with transaction.atomic():
        request = ErasureRequest.objects.create(tenant=tenant, visitor=visitor, requested_by_id=user_id)
        erase_visitor.dispatch(tenant.pk, request.pk)
    return request


def erasure_run(*, tenant_id: int, request_id: int, final: bool) -> int:
    """One pass: delete the visitor's hits in batches; the rows erased in this pass."""
    request = ErasureRequest.objects.filter(pk=request_id, tenant_id=tenant_id).first()
    if request is None or request.status == ErasureRequest.Status.DONE:
        return 0
    table = connection.ops.quote_name(Interaction._meta.db_table)
    erased = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                # No SKIP LOCKED: a row being written now is waited for, not left behind.
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE tenant_id = %s"  # noqa: S608
                " AND visitor = %s LIMIT %s)",
                [tenant_id, request.visitor, BATCH],
            )
            deleted: int = cursor.rowcount
            if deleted:
                ErasureRequest.objects.filter(pk=request_id).update(erased=F("erased") + deleted)
        erased += deleted
        if deleted < BATCH:
            break
    if final:
        ErasureRequest.objects.filter(pk=request_id).update(
            status=ErasureRequest.Status.DONE, finished_at=timezone.now()
        )
    log.info("erasure %s: %d hit(s) of visitor %s erased (%s pass)", request_id, erased, request.visitor,
             "final" if final else "first")  # fmt: skip
    return erased


def buffer_behind(since: datetime) -> bool:
    """Whether the tracking buffer still holds a hit from before ``since`` (undrained).
    Entry ids are millisecond timestamps, and drained entries are deleted."""
    from tenants.tracking.hits import STREAM, default_redis

    try:
        oldest = default_redis().xrange(STREAM, count=1)
    except RedisError:
        return False  # unknown: go on (the drain's own alerts report a Redis outage)
    if not oldest:
        return False
    entry_id = oldest[0][0]
    millis = int((entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)).split("-")[0])
    return millis <= since.timestamp() * 1000


@job(queue="maintenance", timeout=300, tries=3, backoff=[30, 120], tenant_arg="tenant_id")
def erase_visitor(tenant_id: int, request_id: int, final: bool = False, waits: int = 0) -> int:
    """Erase one visitor's hits: now, and once more when the buffer has drained past the request."""
    if final and waits < MAX_WAITS:
        requested = ErasureRequest.objects.filter(pk=request_id).values_list("created_at", flat=True).first()
        if requested is not None and buffer_behind(requested):
            erase_visitor.dispatch_in(SECOND_PASS, tenant_id, request_id, final=True, waits=waits + 1)
            return 0
    erased: int = erasure_run(tenant_id=tenant_id, request_id=request_id, final=final)
    if not final:
        erase_visitor.dispatch_in(SECOND_PASS, tenant_id, request_id, final=True)
    return erased
