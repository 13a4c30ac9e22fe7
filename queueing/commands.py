"""Shared by the queue runtime's management commands (and the outbox's):
the Redis connection, queue names, failed-job ids, and the audit trail of
operator actions taken from the command line. Argument types are in
``lib.arguments``."""

from __future__ import annotations

import os
import pwd
import socket
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError


def operator() -> str:
    """Who runs this command, for the audit trail: the OS user and the host, from
    the process's real uid (not $USER, which the caller sets), and who used sudo."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a container's uid with no passwd entry
        user = f"uid{os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    via = f" (sudo by {sudo})" if sudo and sudo != user else ""
    return f"{user}@{socket.gethostname()}{via}"


def audit_command(action: str, target: str = "", **detail: Any) -> None:
    """Audit an operator action taken from the command line, like the
    dashboard's (same action names); ``via`` tells the two apart."""
    from queueing.services import audit_record

    audit_record(user=None, username=operator(), action=action, target=target, detail={"via": "command", **detail})


def known_queue(name: str) -> str:
    if name not in settings.RQ_QUEUES:
        raise CommandError(f"unknown queue {name!r}; configured: {', '.join(settings.RQ_QUEUES)}", returncode=2)
    return name


def parse_ids(values: list[str]) -> list[int]:
    """Failed-job ids from the command line; anything else is a usage error."""
    ids = []
    for value in values:
        if not value.isdigit():
            raise CommandError(
                f"not a failed-job id: {value!r} (ids are whole numbers; see queue_failed)", returncode=2
            )
        ids.append(int(value))
    return ids


def require_existing(ids: list[int]) -> None:
    from queueing.models import FailedJob

    found = set(FailedJob.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = sorted(set(ids) - found)
    if missing:
        raise CommandError(
            f"no failed job with id {', '.join(map(str, missing))}; nothing was changed (see queue_failed)",
            returncode=2,
        )
