"""Delete failed jobs from the ledger without retrying them (``queue:forget``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queueing.management.commands._base import parse_ids, require_existing
from queueing.services import failed_job_forget


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="+", help="failed-job ids (see queue_failed)")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = parse_ids(options["ids"])
        require_existing(ids)
        self.stdout.write(f"Forgot {failed_job_forget(ids=ids)} failed job(s).")
