"""The release gate: exit status 0 only when Redis and PostgreSQL answer, every
configured queue has a live worker, no queue fails more than the alert's
failure rate over the last 5 minutes, and no status provider (outbox lag or
stuck messages, unprocessed webhooks) reports a problem. Prints one line per
check and what failed; a deploy script or the release checklist runs it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing.dispatch import redis_connection
from queueing.health import run_checks


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the checks as JSON (exit status unchanged)")

    def handle(self, *args: Any, **options: Any) -> None:
        checks = run_checks(redis_connection())
        failed = [c for c in checks if not c.ok]
        if options["json"]:
            rows = [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks]
            self.stdout.write(json.dumps({"ok": not failed, "checks": rows}, indent=2))
        else:
            width = max(len(c.name) for c in checks)
            for c in checks:
                if c.ok and options["verbosity"] == 0:
                    continue
                verdict = f"ok ({c.detail})" if c.ok else f"FAIL: {c.detail}"
                self.stdout.write(f"{c.name:<{width}}  {verdict}")
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(checks)} health check(s) failed: {', '.join(c.name for c in failed)}",
                returncode=1,
            )
        if not options["json"] and options["verbosity"] > 0:
            self.stdout.write(f"All {len(checks)} health checks passed.")
