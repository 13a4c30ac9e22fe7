"""Run every queue worker of ``QUEUE_SUPERVISORS`` under one master process
(Laravel Horizon's ``horizon``): ``manage.py queue_supervise``.

Each supervisor in the setting names its queues, a balance (``auto``: 1 pool
per queue, processes move to the busiest queue between ``min_processes`` per
queue and ``max_processes`` in total, at most ``balance_max_shift`` per
``balance_cooldown`` seconds; ``simple``: ``processes`` split evenly across
the queues; ``off``: one pool of ``processes`` working the queues in order) and
the worker options (tries, backoff, timeout, max_jobs, max_time, memory, sleep,
nice). Children that die are restarted; children that recycle themselves are
replaced. SIGTERM, SIGINT or ``queue_terminate``: every child finishes its job
in hand, then the master exits 0 within ``QUEUE_SUPERVISOR_DRAIN`` seconds (a
second signal interrupts the jobs in hand; they are retried or failed). Unset,
the drain is the longest timeout of a job the pools can take, plus 30 s.
``queue_pause`` / ``queue_continue`` / ``queue_restart`` work as with any
worker. The master's state (pools, processes, scaling decisions) is in Redis
for the queue dashboard. ``--check`` validates the setting and prints the plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lib.arguments import positive_seconds
from queueing.definitions import registered
from queueing.dispatch import redis_connection
from queueing.drain import STOPWAIT_MARGIN, autodiscover_jobs, longest_job
from queueing.supervisor import Master, SupervisorConfig, parse_drain, parse_supervisors


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="validate QUEUE_SUPERVISORS, print what would run, and exit"
        )
        parser.add_argument(
            "--drain",
            type=positive_seconds,
            help="seconds to let children finish on stop (default: QUEUE_SUPERVISOR_DRAIN, or when unset "
            "the longest job timeout the pools can take + 30 s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            supervisors = parse_supervisors(settings.QUEUE_SUPERVISORS, settings.RQ_QUEUES)
            configured = options["drain"] if options["drain"] is not None else settings.QUEUE_SUPERVISOR_DRAIN
            drain = parse_drain(configured) if configured is not None else None
        except ImproperlyConfigured as exc:
            raise CommandError(
                f"{exc}. Fix the setting (or QUEUE_SUPERVISORS_JSON) and start again.", returncode=2
            ) from None
        autodiscover_jobs()
        longest = longest_job(supervisors, settings.RQ_QUEUES, registered())
        needed = float(longest.drain) if longest else 30.0
        if drain is None:
            drain = needed
        elif longest and drain < needed:
            self.stderr.write(
                f"warning: drain {drain:g}s is shorter than {longest.what}'s {longest.seconds}s timeout "
                f"(supervisor {longest.supervisor!r}): such a job is interrupted on stop. {needed:g}s covers it."
            )
        if options["check"]:
            self._print_plan(supervisors, drain)
            return
        Master(
            supervisors,
            connection=redis_connection(),
            drain=drain,
            manage_py=Path(settings.BASE_DIR) / "manage.py",
            verbosity=options["verbosity"],
        ).run()

    def _print_plan(self, supervisors: list[SupervisorConfig], drain: float) -> None:
        for config in supervisors:
            if config.balance == "auto":
                size = (
                    f"{config.min_processes} per queue, {config.max_processes} in total, "
                    f"{config.auto_scaling_strategy} strategy, shift {config.balance_max_shift} "
                    f"every {config.balance_cooldown:g}s"
                )
            else:
                size = f"{config.processes} process(es)"
            self.stdout.write(f"{config.name}: queues {', '.join(config.queues)}; balance {config.balance}, {size}")
            for queues, count in config.initial_pools().items():
                flags = " ".join(config.worker_flags())
                self.stdout.write(
                    f"  {count} × rqworker {' '.join(queues)} {flags}"
                    + (f" (nice {config.nice})" if config.nice else "")
                )
        self.stdout.write(
            f"drain: {drain:g}s (supervisord's stopwaitsecs for this program: at least {drain + STOPWAIT_MARGIN:g})"
        )
