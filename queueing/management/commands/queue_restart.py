"""Ask every running worker to finish its job in hand and exit (Laravel's
``queue:restart``); supervisord then starts them with the new code. Run it
after each deploy."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from queueing.control import queue_restart
from queueing.dispatch import redis_connection


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        queue_restart(redis_connection())
        self.stdout.write("Restart signal sent: workers exit after their current job (within a second when idle).")
