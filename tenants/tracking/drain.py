"""The drain: buffered hits into ``Interaction`` rows, in batches, through a
consumer group (RecordInteraction). docs/tracking.md."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from django.db import DataError, IntegrityError, connection, transaction
from redis import Redis
from redis.exceptions import ResponseError

from tenants.models import Interaction, Tenant
from tenants.tracking.hits import SEP, STREAM, UTM_STORED, column_sizes, default_redis

# One logger for the whole feature, as before the split (operators grep for it).
log = logging.getLogger("tenants.tracking")


GROUP: Final = "record"


# One consumer name for every drain: a run that crashed left its batch pending
# under this name, so the next run (any worker) finds it by reading from id 0.
CONSUMER: Final = "drain"


BATCH_SIZE: Final = 5000


Entry = tuple[bytes, dict[bytes, bytes] | None]  # (stream id, fields); None: trimmed


def ensure_group(conn: Redis) -> None:
    """The consumer group, created reading from the start of the stream (id 0), so
    hits buffered before the group existed (a fresh or flushed Redis) are kept."""
    try:
        conn.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def read_batch(conn: Redis, *, pending: bool, count: int = BATCH_SIZE) -> list[Entry]:
    """Up to ``count`` entries: the group's unacknowledged ones (``pending``: what
    a crashed run read and never acknowledged), or new ones."""
    reply: Any = conn.xreadgroup(GROUP, CONSUMER, {STREAM: "0" if pending else ">"}, count=count)
    if not reply:
        return []
    return list(reply[0][1])


Row = tuple[int, str, str, str, datetime, str, str, str, str, str, str]


def row(hit_id: str, packed: str) -> Row:
    tenant, kind, visitor, code, source, medium, campaign, term, content = packed.split(SEP)
    size = column_sizes()
    return (
        int(tenant),
        Interaction.Kind.REDIRECT if kind == "r" else Interaction.Kind.VIEW,
        code[: size["code"]],
        visitor[: size["visitor"]],
        # The entry id starts with Redis' clock in milliseconds: the hit's time.
        datetime.fromtimestamp(int(hit_id.split("-")[0]) / 1000, UTC),
        source[: size["utm_source"]],
        medium[: size["utm_medium"]],
        campaign[: size["utm_campaign"]],
        term[: size["utm_term"]],
        content[: size["utm_content"]],
        hit_id,
    )


# The columns in Row's order. One INSERT … SELECT FROM unnest(arrays) per batch:
# eleven parameters however many rows, where bulk_create would compile (and
# psycopg adapt) eleven placeholders per row, several times the drain's cost.
_COLUMNS: Final = ("tenant_id", "kind", "code", "visitor", "occurred_at", *UTM_STORED, "hit_id")


_TYPES: Final = ("bigint", "text", "text", "text", "timestamptz", "text", "text", "text", "text", "text", "text")


def _insert(rows: Sequence[Row]) -> None:
    columns = ", ".join(_COLUMNS)
    arrays = ", ".join(f"%s::{kind}[]" for kind in _TYPES)
    sql = (
        f"INSERT INTO {Interaction._meta.db_table} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608 - constants
        " ON CONFLICT (hit_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])


def insert_each(rows: Sequence[Row]) -> list[tuple[str, Exception]]:
    """The rows one by one, each in a savepoint, in one transaction: the rows
    PostgreSQL refuses (hit id, error) are left out, the others are stored."""
    refused: list[tuple[str, Exception]] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Foreign keys are checked at commit (Django makes them DEFERRABLE
            # INITIALLY DEFERRED): checked now, a row whose tenant was deleted
            # fails in its own savepoint, not the whole transaction at the end.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for row in rows:
            try:
                with transaction.atomic():
                    _insert([row])
            except (DataError, IntegrityError) as exc:
                refused.append((row[-1], exc))
    return refused


def live_tenants(ids: set[int]) -> set[int]:
    """Which of ``ids`` are tenants still (a tenant deleted since its hits were buffered is not)."""
    return set(Tenant.objects.filter(pk__in=ids).values_list("pk", flat=True))


def store(entries: Sequence[Entry], *, live: Callable[[set[int]], set[int]] = live_tenants) -> int:
    """Insert a batch (one statement, one transaction); entries already stored
    are skipped by their ``hit_id`` (ON CONFLICT DO NOTHING), so storing a batch
    twice stores it once. Returns the rows stored (or found already stored).

    Entries that can never be stored are left out, with one log line for the
    batch, so that acknowledging the batch drops them: malformed ones, hits of
    a deleted tenant, and rows PostgreSQL refuses (a value it cannot hold). If
    the batch's INSERT is refused, it is retried row by row to find those.
    Anything else (PostgreSQL down, a timeout) raises: the batch stays pending
    and the next run stores it.
    """
    rows: list[Row] = []
    malformed: list[str] = []
    for raw_id, fields in entries:
        hit_id = raw_id.decode()
        if not fields:
            continue  # trimmed by the stream cap before it was read
        try:
            rows.append(row(hit_id, fields[b"h"].decode()))
        except (KeyError, ValueError, UnicodeDecodeError, OverflowError, OSError):
            malformed.append(hit_id)
    if malformed:
        log.warning("tracking: dropped %d malformed buffered hit(s) (first: %s)", len(malformed), malformed[0])
    # A tenant deleted since its hits were buffered: they have nothing to belong to.
    alive = live({row[0] for row in rows})
    rows = [row for row in rows if row[0] in alive]
    if not rows:
        return 0
    try:
        with transaction.atomic():
            _insert(rows)
    except (DataError, IntegrityError) as exc:
        log.warning("tracking: PostgreSQL refused a batch of %d hits (%s); storing them one by one", len(rows), exc)
        refused = insert_each(rows)
        if refused:
            hit_id, error = refused[0]
            log.error(
                "tracking: dropped %d buffered hit(s) PostgreSQL refused (first: %s: %s: %s)",
                len(refused),
                hit_id,
                type(error).__name__,
                error,
            )
        return len(rows) - len(refused)
    return len(rows)


def acknowledge(conn: Redis, entries: Sequence[Entry]) -> None:
    """Done with a stored batch: acknowledge it and free its memory (MULTI)."""
    ids = [raw_id for raw_id, _ in entries]
    if ids:
        with conn.pipeline() as pipe:
            pipe.xack(STREAM, GROUP, *ids)
            pipe.xdel(STREAM, *ids)
            pipe.execute()


def interactions_record(
    *,
    batch_size: int = BATCH_SIZE,
    max_seconds: float = 50.0,
    conn: Redis | None = None,
    live: Callable[[set[int]], set[int]] = live_tenants,
) -> int:
    """Drain the buffer into ``Interaction`` rows until it is empty (or
    ``max_seconds`` passed; the next run continues). Pending entries first.

    Each batch is read, stored and committed, and only then acknowledged: a crash
    anywhere leaves the batch pending for the next run, which stores it again
    harmlessly (``hit_id``). Two runs at once are safe for the same reason.
    """
    conn = conn or default_redis()
    ensure_group(conn)
    deadline = time.monotonic() + max_seconds
    pending, total = True, 0
    while time.monotonic() < deadline:
        entries = read_batch(conn, pending=pending, count=batch_size)
        if not entries:
            if not pending:
                break
            pending = False
            continue
        total += store(entries, live=live)
        acknowledge(conn, entries)
    return total


def buffered(conn: Redis | None = None) -> int:
    """Hits waiting in the buffer (read or not)."""
    return int((conn or default_redis()).xlen(STREAM))


def buffered_hits(*, campaign: str, conn: Redis | None = None, scan: int = 10_000) -> int:
    """How many of the newest ``scan`` buffered hits carry ``utm_campaign`` ``campaign``
    (the tracking smoke test's diagnosis: recorded by the web app but not drained yet?)."""
    entries = (conn or default_redis()).xrevrange(STREAM, count=scan) or []
    needle = f"{SEP}{campaign}{SEP}".encode()
    found = 0
    for _, fields in entries:
        packed = (fields or {}).get(b"h", b"")
        if isinstance(packed, bytes) and needle in packed + SEP.encode():
            found += 1
    return found
