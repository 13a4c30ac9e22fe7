"""Resume a paused queue: workers take its jobs again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queueing.commands import audit_command, known_queue
from queueing.control import queue_continue
from queueing.dispatch import redis_connection


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queue", help="queue name, e.g. default")

    def handle(self, *args: Any, **options: Any) -> None:
        name = known_queue(options["queue"])
        changed = queue_continue(redis_connection(), name)
        audit_command("continue", f"queue:{name}", changed=changed)
        state = "running"
        note = "" if changed else " (it already was)"
        self.stdout.write(f"Queue {name} is {state}{note}.")
