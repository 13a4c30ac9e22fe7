"""Run the periodic schedule (Laravel's ``schedule:work``); ``--once`` runs one
pass and exits (``schedule:run``, for cron). Several may run at once: each tick
is claimed in Redis, so it is dispatched exactly once. Also promotes due
delayed jobs and reaps abandoned ones."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from lib.arguments import positive_seconds
from queueing.scheduler import Entry, Scheduler, run_pending


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run what is due in the last minute, then exit")
        parser.add_argument(
            "--schedule", default=None, help="dotted path of the table (default settings.QUEUE_SCHEDULE)"
        )
        parser.add_argument("--max-time", type=positive_seconds, help="exit after this many seconds")
        parser.add_argument("--list", action="store_true", help="print the table and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        from queueing.dispatch import get_queue

        path = options["schedule"] or settings.QUEUE_SCHEDULE
        try:
            table = import_string(path)
        except ImportError as exc:
            raise CommandError(f"cannot load schedule {path!r}: {exc}", returncode=2) from None
        # Checked before anything runs (a path to a setting or a function would be a traceback
        # later); the value itself is not echoed: it could be any setting.
        if not isinstance(table, list | tuple) or not all(isinstance(entry, Entry) for entry in table):
            raise CommandError(f"{path!r} is not a schedule: expected a list of queueing.scheduler.Entry", returncode=2)
        entries: list[Entry] = list(table)
        if options["list"]:
            for entry in entries:
                when = f"cron {entry.cron}" if entry.cron else f"every {entry.every}s"
                self.stdout.write(
                    f"{entry.name:28} {when:22} {entry.job}{entry.args or ''} → {entry.queue or 'job queue'}"
                )
            return
        queues = [get_queue(name) for name in settings.RQ_QUEUES]
        conn = queues[0].connection
        if options["once"]:
            now = time.time()
            fired = run_pending(conn, entries, now - 60, now)
            self.stdout.write(f"Dispatched {len(fired)} tick(s).")
            return
        self.stdout.write(f"Scheduler running {len(entries)} entries from {path}.")
        Scheduler(conn, entries, queues).loop(max_time=options["max_time"])
