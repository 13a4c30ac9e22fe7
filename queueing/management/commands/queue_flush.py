"""Delete failed jobs from the ledger: all of them, those of one ``--queue``
(seed 002's ``queue:flush webhooks``), or those older than ``--hours``
(Laravel's ``queue:flush``); the filters combine. ``--dry-run`` only counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from queueing.commands import audit_command
from queueing.models import FailedJob
from queueing.services import failed_job_flush


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=int, help="only rows older than this many hours")
        parser.add_argument("--queue", help="only rows of jobs that failed on this queue")
        parser.add_argument("--dry-run", action="store_true", help="say how many would go; delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["hours"]
        if hours is not None and hours < 0:
            raise CommandError("--hours cannot be negative", returncode=2)
        queue = options["queue"]
        # A queue dropped by a layout change may still have ledger rows: allowed if so.
        if queue is not None and queue not in settings.RQ_QUEUES and not FailedJob.objects.filter(queue=queue).exists():
            raise CommandError(
                f"unknown queue {queue!r}: not configured ({', '.join(settings.RQ_QUEUES)}) and no failed job names it",
                returncode=2,
            )
        of = f" of queue {queue!r}" if queue else ""
        if options["dry_run"]:
            rows = FailedJob.objects.all()
            if hours is not None:
                rows = rows.filter(failed_at__lt=timezone.now() - timedelta(hours=hours))
            if queue is not None:
                rows = rows.filter(queue=queue)
            self.stdout.write(f"Would delete {rows.count()} failed job(s){of}.")
            return
        deleted = failed_job_flush(older_than_hours=hours, queue=queue)
        scope = {"queue": queue} if queue is not None else {}
        audit_command("flush", "failed_jobs", older_than_hours=hours, **scope, deleted=deleted)
        self.stdout.write(f"Deleted {deleted} failed job(s){of}.")
