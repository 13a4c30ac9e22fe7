"""Delete records past their retention, and orphaned files (the nightly purge, by hand).

  manage.py purge --dry-run              what would go, per kind: rows, size, files, oldest
  manage.py purge                        delete it (short batches; progress is logged)
  manage.py purge --only interactions    one kind (repeat --only, or separate with commas)
  manage.py purge --tenant acme          one tenant's data (kinds that are not tenant data are skipped)

Days per kind: RETENTION_DAYS over each kind's default, and a plan's own
``retention_days`` for its tenants; rows something still needs are kept.
An unknown kind or tenant exits 2 and changes nothing. Each real run is
recorded (admin: Queueing → Purge runs) and in the operator audit trail.
docs/retention.md.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from lib.arguments import non_empty
from queueing.commands import audit_command
from queueing.retention import KindResult, RetentionError, days_for, kinds, purge, purge_preview
from queueing.retention.kinds import kind_named


class Command(BaseCommand):
    help = __doc__

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        from argparse import RawDescriptionHelpFormatter

        return super().create_parser(prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="report what would go; change nothing")
        parser.add_argument(
            "--only",
            action="append",
            type=non_empty,
            default=[],
            metavar="KIND",
            help="only this kind (repeatable, or comma-separated); the kinds are listed by --dry-run",
        )
        parser.add_argument("--tenant", type=non_empty, default=None, metavar="SLUG", help="only this tenant's data")

    def handle(self, *args: Any, **options: Any) -> None:
        only = [name.strip() for value in options["only"] for name in value.split(",") if name.strip()]
        tenant: str = options["tenant"] or ""
        try:
            for name in only:
                kind_named(name)
            if options["dry_run"]:
                results = purge_preview(only=only, tenant=tenant)
            else:
                if options["verbosity"] >= 1:
                    self._log_progress()
                run = purge(trigger="command", only=only, tenant=tenant)
                results = {name: KindResult.from_json(data) for name, data in run.results.items()}
                audit_command("purge", tenant or "all tenants", run=run.pk, only=only, rows=run.rows)
        except RetentionError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self._report(results, dry_run=options["dry_run"])

    def _log_progress(self) -> None:
        logger = logging.getLogger("queueing.retention")
        if not any(getattr(h, "stream", None) is sys.stderr for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)

    def _report(self, results: dict[str, KindResult], *, dry_run: bool) -> None:
        days = {kind.name: days_for(kind) for kind in kinds()}
        self.stdout.write("Would delete (dry run, nothing changed):" if dry_run else "Deleted:")
        header = (
            f"{'kind':<18} {'days':>5} {'rows':>10} {'size':>10} {'files':>6} {'file size':>10} {'orphans':>8}  oldest"
        )
        self.stdout.write(header)
        total_rows = total_bytes = 0
        for name, figures in results.items():
            if figures.skipped:
                self.stdout.write(f"{name:<18} {days.get(name, ''):>5}  skipped: {figures.skipped}")
                continue
            oldest = figures.oldest.strftime("%Y-%m-%d %H:%M") if figures.oldest else "-"
            orphans = f"{figures.orphans}" + (f" ({filesizeformat(figures.orphan_bytes)})" if figures.orphans else "")
            self.stdout.write(
                f"{name:<18} {days.get(name, ''):>5} {figures.rows:>10,} {filesizeformat(figures.bytes):>10}"
                f" {figures.files:>6} {filesizeformat(figures.file_bytes):>10} {orphans:>8}  {oldest}"
            )
            total_rows += figures.rows
            total_bytes += figures.bytes + figures.file_bytes + figures.orphan_bytes
        self.stdout.write(f"Total: {total_rows:,} rows, {filesizeformat(total_bytes)}.")
