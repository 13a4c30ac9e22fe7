"""List failed jobs from the ledger, newest first (Laravel's ``queue:failed``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lib.arguments import non_empty, positive_int
from queueing.commands import known_queue
from queueing.models import FailedJob


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", type=non_empty, help="only this queue (also one since removed from settings)")
        # positive_int: a negative slice of a queryset is a ValueError (a traceback).
        parser.add_argument("--limit", type=positive_int, default=50, help="rows to show (default %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = FailedJob.objects.order_by("-failed_at")
        if (queue := options["queue"]) is not None:
            # The ledger outlives the configuration: a removed queue's rows can
            # still be listed. A name neither knows is a typo: an error, not
            # "No failed jobs.".
            if not rows.filter(queue=queue).exists():
                known_queue(queue)
            rows = rows.filter(queue=queue)
        total = rows.count()
        if not total:
            self.stdout.write("No failed jobs.")
            return
        header = f"{'ID':>6}  {'Failed at':19}  {'Queue':8}  {'Tries':>5}  {'Job':40}  Exception"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for row in rows[: options["limit"]]:
            message = row.message.splitlines()[0][:60] if row.message else ""
            self.stdout.write(
                f"{row.pk:>6}  {row.failed_at:%Y-%m-%d %H:%M:%S}  {row.queue:8}  {row.attempts:>5}  "
                f"{row.job_name[-40:]:40}  {row.exception_class.rsplit('.', 1)[-1]}: {message}"
            )
        if total > options["limit"]:
            self.stdout.write(f"… {total - options['limit']} more (use --limit).")
