"""Retention: how long each kind of record is kept, and the purge that enforces it.

- ``kinds``: the registry (apps register their kinds in ``AppConfig.ready()``)
- ``engine``: which rows may go, measuring them, deleting them in short batches
- ``files``: files of purged rows and orphaned files in storage
- ``runs``: the service (preview, start, continue, record) the command and the job call

docs/retention.md.
"""

from queueing.retention.engine import KindResult
from queueing.retention.kinds import Kind, RetentionError, Tenancy, days_for, kinds, register_kind, register_tenancy
from queueing.retention.runs import purge, purge_continue, purge_preview, purge_start

__all__ = [
    "Kind",
    "KindResult",
    "RetentionError",
    "Tenancy",
    "days_for",
    "kinds",
    "purge",
    "purge_continue",
    "purge_preview",
    "purge_start",
    "register_kind",
    "register_tenancy",
]
