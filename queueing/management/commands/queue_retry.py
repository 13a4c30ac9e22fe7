"""Dispatch failed jobs again with fresh attempts and remove them from the
ledger (Laravel's ``queue:retry``): ``queue_retry 12 13``, ``queue_retry all``,
``queue_retry all --queue high``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lib.arguments import non_empty
from queueing.commands import audit_command, known_queue, parse_ids, require_existing
from queueing.services import failed_job_retry, failed_jobs_target


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="+", help="failed-job ids, or 'all'")
        parser.add_argument("--queue", type=non_empty, help="with 'all': only this queue")

    def handle(self, *args: Any, **options: Any) -> None:
        queue = known_queue(options["queue"]) if options["queue"] is not None else None
        if options["ids"] == ["all"]:
            new_ids = failed_job_retry(ids=None, queue=queue)
            audit_command("retry", f"failed_jobs:all{f':{queue}' if queue else ''}", dispatched=len(new_ids))
        else:
            if queue:
                raise CommandError("--queue only goes with 'all'", returncode=2)
            ids = parse_ids(options["ids"])
            require_existing(ids)
            new_ids = failed_job_retry(ids=ids)
            audit_command("retry", failed_jobs_target(ids), ids=ids, new_job_ids=new_ids)
        self.stdout.write(f"Dispatched {len(new_ids)} job(s) again.")
