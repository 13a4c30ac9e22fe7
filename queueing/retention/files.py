"""Files of purged rows, and files no row references (orphans), in default storage.

A file is deleted only after the transaction that deleted its row has
committed: a crash in between leaves an orphan, which the sweep removes on a
later run, never a row pointing at nothing. The sweep leaves a file younger
than ``RETENTION_ORPHAN_GRACE_HOURS`` alone, so a file being written now,
whose row is not saved yet, is never taken.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage

from queueing.retention.kinds import Kind

log = logging.getLogger("queueing.retention")


def size(name: str) -> int | None:
    """The file's size, or None when it is not there (already gone, never written)."""
    try:
        return int(default_storage.size(name))
    except (FileNotFoundError, OSError):
        return None


def delete(name: str) -> int | None:
    """Delete a file; its size, or None when there was nothing to delete."""
    size_of = size(name)
    if size_of is None:
        return None
    try:
        default_storage.delete(name)
    except OSError:
        log.warning("purge: could not delete file %s; the orphan sweep will retry", name, exc_info=True)
        return None
    return size_of


def orphans(kind: Kind, now: datetime) -> Iterator[tuple[str, int]]:
    """Files under the kind's prefix that no row references and that are older than the grace period."""
    if kind.file_prefix is None or not kind.file_fields:
        return
    # Listed before the references are read: a row saved in between is seen.
    listed = list(_walk(kind.file_prefix.rstrip("/")))
    if not listed:
        return
    referenced = {
        name
        for file_field in kind.file_fields
        for name in kind.model._default_manager.exclude(**{file_field: ""})
        .values_list(file_field, flat=True)
        .iterator(chunk_size=5000)
    }
    grace = now - timedelta(hours=settings.RETENTION_ORPHAN_GRACE_HOURS)
    for name in listed:
        if name in referenced:
            continue
        try:
            modified = default_storage.get_modified_time(name)
        except (FileNotFoundError, OSError):
            continue
        if modified >= grace:
            continue
        size_of = size(name)
        if size_of is not None:
            yield name, size_of


def _walk(prefix: str) -> Iterator[str]:
    try:
        directories, names = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        yield f"{prefix}/{name}"
    for directory in directories:
        yield from _walk(f"{prefix}/{directory}")
