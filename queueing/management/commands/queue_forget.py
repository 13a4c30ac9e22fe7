"""Delete failed jobs from the ledger without retrying them (``queue:forget``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queueing.commands import audit_command, parse_ids, require_existing
from queueing.services import failed_job_forget, failed_jobs_target


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="+", help="failed-job ids (see queue_failed)")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = parse_ids(options["ids"])
        require_existing(ids)
        deleted = failed_job_forget(ids=ids)
        audit_command("forget", failed_jobs_target(ids), ids=ids, deleted=deleted)
        self.stdout.write(f"Forgot {deleted} failed job(s).")
