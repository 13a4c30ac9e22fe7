"""Shared bits of the queue_* commands."""

from __future__ import annotations

import argparse
import os
import pwd
import socket
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from redis import Redis


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


def connection() -> Redis:
    import django_rq

    return django_rq.get_connection("default")


def positive_seconds(value: str) -> float:
    """argparse type for a duration: a bad value is a usage error (exit 2)."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def _whole_number(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {value!r}")
    return number


def non_empty(value: str) -> str:
    """argparse type for a selector (queue, event type): an empty value is a usage
    error, so an unset shell variable (``--queue "$Q"``) cannot widen a selection
    to everything."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty (an unset shell variable?)")
    return value


def positive_int(value: str) -> int:
    """argparse type for a limit, count or id (1 or more): a bad value is a usage error (exit 2)."""
    return _whole_number(value, 1)


def non_negative_int(value: str) -> int:
    """argparse type for an age in whole seconds or hours (0 or more): a bad value is a usage error."""
    return _whole_number(value, 0)


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
