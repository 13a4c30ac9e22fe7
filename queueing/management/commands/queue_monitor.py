"""Check queue depths against limits now (Horizon's ``horizon:monitor``, run
synchronously): ``queue_monitor default:1000 high:100``. Without arguments,
every queue against QUEUE_ALERT_DEPTH. Prints each queue's depth and limit;
exit status 1 when any queue holds more jobs than its limit, 2 on a malformed
argument. ``--notify`` also e-mails the operators, with the alerts' rules: once
per queue per QUEUE_ALERT_COOLDOWN while it stays over, and a resolved notice.
The scheduled alerts (``check_alerts``) watch depths anyway; this is for cron
jobs and deploy scripts that want an answer now."""

from __future__ import annotations

from typing import Any

import django_rq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing import alerts
from queueing.dispatch import redis_connection

USAGE = "usage: queue_monitor [QUEUE:MAX_JOBS ...] [--notify], e.g. queue_monitor default:1000 high:100"


def parse_limits(values: list[str]) -> dict[str, int]:
    """``["default:1000", "high:100"]`` -> limits; anything else is a usage error (exit 2)."""
    limits: dict[str, int] = {}
    for value in values:
        queue, sep, number = value.partition(":")
        if not sep or not queue or not number.isdigit():
            raise CommandError(f"malformed limit {value!r}: expected QUEUE:MAX_JOBS\n{USAGE}", returncode=2)
        if queue not in settings.RQ_QUEUES:
            raise CommandError(
                f"unknown queue {queue!r}; configured: {', '.join(settings.RQ_QUEUES)}\n{USAGE}", returncode=2
            )
        if queue in limits:
            raise CommandError(f"queue {queue!r} given twice\n{USAGE}", returncode=2)
        limits[queue] = int(number)
    return limits


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("limits", nargs="*", metavar="QUEUE:MAX_JOBS", help="e.g. default:1000 high:100")
        parser.add_argument("--notify", action="store_true", help="also e-mail the operators (with cool-down)")

    def handle(self, *args: Any, **options: Any) -> None:
        limits = parse_limits(options["limits"]) or dict(settings.QUEUE_ALERT_DEPTH)
        conn = redis_connection()
        # One pipelined round trip for every queue's length.
        with conn.pipeline(transaction=False) as pipe:
            for name in limits:
                pipe.llen(django_rq.get_queue(name, connection=conn).key)
            sizes = dict(zip(limits, pipe.execute(), strict=True))
        conditions = [
            alerts.depth_condition(name, sizes[name], limit, key_prefix="monitor_depth")
            for name, limit in limits.items()
        ]
        width = max(len(name) for name in limits)
        for name, limit in limits.items():
            verdict = "OVER" if sizes[name] > limit else "ok"
            self.stdout.write(f"{name:<{width}}  {sizes[name]:>8} job(s)  limit {limit:>8}  {verdict}")
        if options["notify"]:
            # Its own alert state ("monitor"), so it neither resolves nor repeats the scheduled checks'
            # alerts; not "complete": a run that names fewer queues resolves nothing it did not check.
            notices = alerts.process(conn, conditions, notifier="monitor", complete=False)
            for notice in notices:
                self.stdout.write(f"notified: {notice.kind} {notice.condition.key}")
        over = [c.key.split(":", 1)[1] for c in conditions if c.firing]
        if over:
            raise CommandError(f"{len(over)} queue(s) over their limit: {', '.join(over)}", returncode=1)
