"""Which rows of a kind may go, how much that is, and deleting them in short batches.

A batch is one statement: ``WITH doomed (pk) AS (SELECT … ORDER BY pk LIMIT n
FOR UPDATE SKIP LOCKED) DELETE … RETURNING``. Rows another transaction holds
(a failed job being retried, a second purge's batch) are skipped, never
waited for, so two purges at once neither delete a row twice nor deadlock.
The batch size adapts so that one statement holds its locks for about a
quarter of a second. Files go after their rows have committed
(queueing/retention/files.py). docs/retention.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL

from queueing.retention import files
from queueing.retention.kinds import Kind, days_for, tenancy

log = logging.getLogger("queueing.retention")

BATCH_MIN, BATCH_START, BATCH_MAX = 100, 1000, 20000
BATCH_TARGET_S = 0.25  # how long one DELETE may hold its row locks, about
PROGRESS_EVERY_S = 5.0


@dataclass
class KindResult:
    """What went (or, in a dry run, would go) for one kind."""

    rows: int = 0
    bytes: int = 0  # the rows' own size in PostgreSQL (pg_column_size), before TOAST compression is undone
    files: int = 0
    file_bytes: int = 0
    oldest: datetime | None = None
    orphans: int = 0  # files in storage no row references (older than the grace period)
    orphan_bytes: int = 0
    skipped: str = ""  # why this kind was not looked at (``--tenant`` on data that is not a tenant's)

    def add(self, other: KindResult) -> None:
        self.rows += other.rows
        self.bytes += other.bytes
        self.files += other.files
        self.file_bytes += other.file_bytes
        self.orphans += other.orphans
        self.orphan_bytes += other.orphan_bytes
        if other.oldest is not None and (self.oldest is None or other.oldest < self.oldest):
            self.oldest = other.oldest
        self.skipped = self.skipped or other.skipped

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "files": self.files,
            "file_bytes": self.file_bytes,
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "orphans": self.orphans,
            "orphan_bytes": self.orphan_bytes,
            "skipped": self.skipped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KindResult:
        oldest = data.get("oldest")
        return cls(
            rows=data.get("rows", 0),
            bytes=data.get("bytes", 0),
            files=data.get("files", 0),
            file_bytes=data.get("file_bytes", 0),
            oldest=datetime.fromisoformat(oldest) if oldest else None,
            orphans=data.get("orphans", 0),
            orphan_bytes=data.get("orphan_bytes", 0),
            skipped=data.get("skipped", ""),
        )


@dataclass(frozen=True)
class Scope:
    """One run's clock and selection: every cutoff is computed from ``now``, once."""

    now: datetime
    tenant_id: int | None = None


def purgeable(kind: Kind, scope: Scope) -> Q | None:
    """The condition on the kind's rows that may go now; None when the scope excludes the kind."""
    if scope.tenant_id is not None and kind.tenant_field is None:
        return None
    age = kind.time_field
    condition = Q(**{f"{age}__lt": scope.now - timedelta(days=days_for(kind))})
    registered = tenancy()
    if kind.tenant_field is not None and registered is not None:
        # A plan may keep this kind longer (or shorter): its tenants get their own cutoff.
        for days, tenant_ids in registered.overrides(kind.name):
            in_plan = Q(**{f"{kind.tenant_field}__in": tenant_ids})
            condition = (condition & ~in_plan) | (in_plan & Q(**{f"{age}__lt": scope.now - timedelta(days=days)}))
    if scope.tenant_id is not None:
        condition &= Q(**{kind.tenant_field: scope.tenant_id})  # type: ignore[misc]  # checked above
    if kind.still_needed is not None:
        condition &= ~kind.still_needed(scope.now)
    return condition


TUPLE_HEADER_BYTES = 24  # PostgreSQL's heap tuple header, rounded to its alignment


def _candidates(kind: Kind, condition: Q) -> QuerySet[Any]:
    """The rows that may go, each with its size: one expression for the dry run and the purge.

    The size is the sum of the columns' stored sizes plus the tuple header:
    ``pg_column_size(t.*)`` gives a whole-row figure that differs by a few
    bytes between a plain scan and a locking one, and a dry run must report
    exactly what the purge then removes. Indexes are not counted."""
    quote = connection.ops.quote_name
    table = quote(kind.model._meta.db_table)
    columns = [quote(f.column) for f in kind.model._meta.concrete_fields]
    summed = " + ".join(f"coalesce(pg_column_size({table}.{column}), 0)" for column in columns)
    size = RawSQL(f"{TUPLE_HEADER_BYTES} + {summed}", ())  # noqa: S611  # quoted names from the model, no input
    candidates: QuerySet[Any] = kind.model._default_manager.filter(condition).annotate(row_bytes=size)
    return candidates


def measure(kind: Kind, condition: Q) -> KindResult:
    """A dry run: count, size and age of what ``delete`` would remove, and the files' bytes."""
    model = kind.model
    figures = _candidates(kind, condition).aggregate(
        rows=Count("pk"), size=Sum("row_bytes"), oldest=Min(kind.time_field)
    )
    result = KindResult(rows=figures["rows"], bytes=int(figures["size"] or 0), oldest=figures["oldest"])
    for file_field in kind.file_fields:
        names = model._default_manager.filter(condition).exclude(**{file_field: ""})
        for name in names.values_list(file_field, flat=True).iterator(chunk_size=2000):
            size_of = files.size(name)
            if size_of is not None:
                result.files += 1
                result.file_bytes += size_of
    return result


@dataclass
class _Batcher:
    """Grows or shrinks the batch so one statement holds its locks about BATCH_TARGET_S."""

    size: int = BATCH_START

    def took(self, seconds: float) -> None:
        if seconds > 2 * BATCH_TARGET_S:
            self.size = max(BATCH_MIN, self.size // 2)
        elif seconds < BATCH_TARGET_S / 2:
            self.size = min(BATCH_MAX, self.size * 2)


def delete(kind: Kind, condition: Q, *, deadline: float | None = None) -> tuple[KindResult, bool]:
    """Delete what may go, batch by batch, files after their rows.

    Batches walk the primary key upwards (``pk > last deleted``), so a pass
    reads the table's key index once however many batches it takes; ordering
    each batch by age instead made every batch scan and sort the whole table
    again. A row skipped because it was locked is taken by the next pass; the
    kind is finished when a whole pass deletes nothing.

    Returns what went and whether the kind is finished (False: the deadline,
    a monotonic time, came first; the next run carries on where this stopped)."""
    result = KindResult()
    batcher = _Batcher()
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    after: Any = None  # the last primary key of this pass
    deleted_this_pass = 0
    while True:
        started = time.monotonic()
        batch, names, last = _delete_batch(kind, condition, batcher.size, after)
        batcher.took(time.monotonic() - started)
        for name in names:
            size_of = files.delete(name)
            if size_of is not None:
                batch.files += 1
                batch.file_bytes += size_of
        result.add(batch)
        if batch.rows == 0:
            if deleted_this_pass == 0:
                return result, True
            if deadline is not None and time.monotonic() >= deadline:
                return result, False
            after, deleted_this_pass = None, 0  # another pass, for rows that were locked
            continue
        after, deleted_this_pass = last, deleted_this_pass + batch.rows
        now = time.monotonic()
        if now >= next_progress:
            next_progress = now + PROGRESS_EVERY_S
            log.info("purge %s: %d rows deleted so far (batch of %d)", kind.name, result.rows, batcher.size)
        if deadline is not None and now >= deadline:
            return result, False


def _delete_batch(kind: Kind, condition: Q, limit: int, after: Any) -> tuple[KindResult, list[str], Any]:
    table, pk, age = _columns(kind)
    file_columns = "".join(f", t.{_column(kind, name)}" for name in kind.file_fields)
    if after is not None:
        condition = condition & Q(pk__gt=after)
    with transaction.atomic():
        doomed = (
            _candidates(kind, condition)
            .order_by("pk")
            .select_for_update(skip_locked=True, of=("self",))
            .values("pk", "row_bytes")[:limit]
        )
        doomed_sql, params = doomed.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                # Names quoted from the model's metadata; every value is a parameter.
                f"WITH doomed (pk, row_bytes) AS ({doomed_sql}) DELETE FROM {table} t USING doomed"  # noqa: S608
                f" WHERE t.{pk} = doomed.pk RETURNING t.{pk}, doomed.row_bytes, t.{age}{file_columns}",
                params,
            )
            returned = cursor.fetchall()
        ids = [row[0] for row in returned]
        if ids and kind.after_delete is not None:
            kind.after_delete(ids)
    result = KindResult(rows=len(ids), bytes=sum(int(row[1]) for row in returned))
    ages = [row[2] for row in returned if row[2] is not None]
    result.oldest = min(ages) if ages else None
    return result, [name for row in returned for name in row[3:] if name], max(ids) if ids else after


def _columns(kind: Kind) -> tuple[str, str, str]:
    quote = connection.ops.quote_name
    return quote(kind.model._meta.db_table), quote(kind.model._meta.pk.column), _column(kind, kind.time_field)


def _column(kind: Kind, name: str) -> str:
    column = getattr(kind.model._meta.get_field(name), "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{kind.model.__name__}.{name} is not a column")
    return connection.ops.quote_name(column)
