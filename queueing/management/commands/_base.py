"""Shared bits of the queue_* commands."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError
from redis import Redis


def connection() -> Redis:
    import django_rq

    return django_rq.get_connection("default")


def known_queue(name: str) -> str:
    if name not in settings.RQ_QUEUES:
        raise CommandError(f"unknown queue {name!r}; configured: {', '.join(settings.RQ_QUEUES)}", returncode=2)
    return name
