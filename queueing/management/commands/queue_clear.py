"""Delete every pending job of one queue (Laravel's ``queue:clear``):
``manage.py queue_clear default``.

Jobs waiting in the queue are deleted (their unique locks freed); running and
delayed jobs are not touched, and nothing goes to the failed-job ledger. On a
terminal it asks first; elsewhere (scripts, CI) it needs ``--force``. Every
clear is recorded in the operator audit trail.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing.commands import audit_command, known_queue
from queueing.control import queue_clear
from queueing.dispatch import get_queue


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queue", help="the physical queue to empty")
        parser.add_argument("--force", action="store_true", help="do not ask (required when not on a terminal)")

    def handle(self, *args: Any, **options: Any) -> None:
        queue = known_queue(options["queue"])
        pending = get_queue(queue).count
        if not options["force"]:
            if not sys.stdin.isatty():
                raise CommandError(
                    f"queue_clear deletes {pending} pending job(s) of {queue!r}; not on a terminal, so it will not "
                    "ask: add --force to mean it",
                    returncode=2,
                )
            answer = input(f"Delete the {pending} pending job(s) of queue {queue!r}? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                self.stdout.write("Nothing deleted.")
                return
        deleted = queue_clear(get_queue(queue))
        audit_command("clear", queue, deleted=deleted)
        self.stdout.write(f"Deleted {deleted} pending job(s) from {queue!r}.")
