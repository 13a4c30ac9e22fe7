"""Public tracking: ``/t/<tenant>/pixel.gif`` and ``/t/<tenant>/r/<code>``, and the
Redis buffer between them and the ``Interaction`` table.

Why a buffer: at thousands of hits per second an INSERT (and a durable commit)
per hit would make PostgreSQL the bottleneck of the public endpoints, so a hit
is one Redis round trip. One Lua call counts the client's per-minute window and,
when under the limit, appends the hit to the stream ``vito:track:buffer``.
RecordInteraction (``analytics.jobs.record_interactions``, every minute) drains
the stream through a consumer group in batches of 5,000: one multi-row INSERT
per batch, then XACK + XDEL. A run that crashes between its INSERT and its XACK
leaves the batch pending; the next run reads the pending entries first, and the
unique ``hit_id`` (the stream entry id) makes their second INSERT a no-op, so
a hit is never lost and never counted twice. An entry PostgreSQL refuses is
dropped (logged) rather than retried forever: one bad hit must never stall the
stream. docs/tracking.md.

Redis unavailable (down, out of memory, refusing): the pixel and redirects
are still served, from PostgreSQL and the per-process caches, uncounted and
unrecorded, with one log line per process per ``REDIS_LOG_EVERY`` seconds.

Why plain Django views, not DRF: DRF's request wrapping, content negotiation,
authentication and throttle classes cost more than this whole view, and its
cache-based throttle keeps a list of timestamps per client (a read and a write
of the whole list per request, racy between processes). A fixed-window INCR is
O(1), atomic in the script, and shares the round trip with the buffer append.

The package: ``hits`` (caches, the rate-limit and buffer script, hashing),
``views`` (the two endpoints, bound to their Redis connection), ``drain``
(buffer → rows).
"""

from tenants.tracking.drain import (
    BATCH_SIZE,
    CONSUMER,
    GROUP,
    acknowledge,
    buffered,
    buffered_hits,
    ensure_group,
    insert_each,
    interactions_record,
    live_tenants,
    read_batch,
    row,
    store,
)
from tenants.tracking.hits import (
    PIXEL,
    REDIS_LOG_EVERY,
    SEP,
    STREAM,
    UTM_STORED,
    bucket_of,
    clean,
    clear_caches,
    default_redis,
    outage,
    visitor_hash,
    with_utm,
)
from tenants.tracking.views import Tracker, pixel, redirect

__all__ = [
    "BATCH_SIZE",
    "CONSUMER",
    "GROUP",
    "PIXEL",
    "REDIS_LOG_EVERY",
    "SEP",
    "STREAM",
    "UTM_STORED",
    "Tracker",
    "acknowledge",
    "bucket_of",
    "buffered",
    "buffered_hits",
    "clean",
    "clear_caches",
    "default_redis",
    "ensure_group",
    "insert_each",
    "interactions_record",
    "live_tenants",
    "outage",
    "pixel",
    "read_batch",
    "redirect",
    "row",
    "store",
    "visitor_hash",
    "with_utm",
]
