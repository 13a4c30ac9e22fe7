"""Delete processed outbox messages and their inbox rows older than ``--days``
(Laravel's ``outbox:prune``), a thousand at a time so no lock is held long.
Pending, dispatched and dead messages are never pruned. The nightly retention
purge (``purge``, docs/retention.md) deletes the same rows on the schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from outbox.services import outbox_prune


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=7, help="keep this many days (default %(default)s)")
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per delete (default %(default)s)")
        parser.add_argument("--dry-run", action="store_true", help="count only")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 0 or options["batch_size"] < 1:
            raise CommandError("--days must be ≥ 0 and --batch-size ≥ 1", returncode=2)
        count = outbox_prune(
            older_than=timedelta(days=options["days"]), batch_size=options["batch_size"], dry_run=options["dry_run"]
        )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(f"{verb} {count} processed message(s) older than {options['days']} day(s).")
