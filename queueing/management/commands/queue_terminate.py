"""Make the running queue master(s) drain and exit 0 (Laravel Horizon's
``horizon:terminate``): every child finishes its job in hand first. Run it
after a deploy: supervisord starts the master again with the new code and
``QUEUE_SUPERVISORS``. (``queue_restart`` only restarts the workers, not the
master and its configuration.) ``--wait`` blocks until every master running
when the signal was sent has gone (masters started afterwards, e.g. by
supervisord, are new and keep running).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis import Redis

from lib.arguments import positive_seconds
from queueing.dispatch import redis_connection
from queueing.supervisor import request_terminate, supervisor_state


def _live_names(conn: Redis) -> set[str]:
    return {str(state["master"].get("name")) for state in supervisor_state(conn)}


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", action="store_true", help="wait until the masters have drained and exited")
        parser.add_argument(
            "--timeout",
            type=positive_seconds,
            help="with --wait: give up after this many seconds, exit 1 (default: QUEUE_SUPERVISOR_DRAIN + 15)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        conn = redis_connection()
        # The masters running now are the ones the signal concerns; a master
        # started after it (a new name: each start draws a fresh token) is not.
        before = supervisor_state(conn)
        request_terminate(conn)
        if not before:
            self.stdout.write("Terminate signal sent; no queue master is publishing its state, so none may be running.")
            return
        self.stdout.write(f"Terminate signal sent to {len(before)} queue master(s):")
        for state in before:
            master = state["master"]
            processes = sum(len(p["processes"]) for s in state["supervisors"] for p in s["pools"])
            self.stdout.write(
                f"  master {master['name']} (pid {master['pid']} on {master['host']}) "
                f"drains its {processes} process(es) and exits within {master.get('drain', '?')}s."
            )
        if options["wait"]:
            names = {str(state["master"].get("name")) for state in before}
            self._wait(conn, names, options["timeout"] or float(settings.QUEUE_SUPERVISOR_DRAIN) + 15)

    def _wait(self, conn: Redis, names: set[str], timeout: float) -> None:
        # Gone when its state expired or was removed.
        deadline = time.monotonic() + timeout
        while left := names & _live_names(conn):
            if time.monotonic() >= deadline:
                raise CommandError(
                    f"queue master(s) still running after {timeout:g}s: {', '.join(sorted(left))}", returncode=1
                )
            time.sleep(0.5)
        self.stdout.write("The master has exited." if len(names) == 1 else f"All {len(names)} masters have exited.")
