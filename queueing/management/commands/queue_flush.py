"""Delete failed jobs from the ledger: all of them, or those older than
``--hours`` (Laravel's ``queue:flush``). ``--dry-run`` only counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from queueing.commands import audit_command
from queueing.models import FailedJob
from queueing.services import failed_job_flush


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=int, help="only rows older than this many hours")
        parser.add_argument("--dry-run", action="store_true", help="say how many would go; delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["hours"]
        if hours is not None and hours < 0:
            from django.core.management.base import CommandError

            raise CommandError("--hours cannot be negative", returncode=2)
        if options["dry_run"]:
            rows = FailedJob.objects.all()
            if hours is not None:
                rows = rows.filter(failed_at__lt=timezone.now() - timedelta(hours=hours))
            self.stdout.write(f"Would delete {rows.count()} failed job(s).")
            return
        deleted = failed_job_flush(older_than_hours=hours)
        audit_command("flush", "failed_jobs", older_than_hours=hours, deleted=deleted)
        self.stdout.write(f"Deleted {deleted} failed job(s).")
