"""Print the effective queue topology: ``manage.py queue_topology``.

The layout in use (QUEUE_LAYOUT), its physical queues (timeout, tries, alert
limits), the routes from logical queues to physical ones, the pools of
workers, and which jobs land on each queue. ``--supervisord`` prints
supervisord programs for it instead, in one of two shapes:

  master  one program running ``queue_supervise`` (balancing, restarts, drain)
  pools   one program per pool (per queue for simple/auto pools), each an
          ``rqworker`` with the pool's flags and its own log file

  manage.py queue_topology --supervisord pools --prefix vito > /etc/supervisor/conf.d/vito-workers.conf
"""

from __future__ import annotations

import re
import sys
from argparse import RawDescriptionHelpFormatter
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing.definitions import registered
from queueing.drain import autodiscover_jobs
from queueing.scheduler import scheduled_work
from queueing.supervisor import SupervisorConfig, parse_supervisors
from queueing.supervisor.programs import Target, master_programs, pool_programs
from queueing.topology import declared_work, default_tries, routes, work_by_queue

PROGRAM_PREFIX = re.compile(r"[A-Za-z0-9_-]+")


class Command(BaseCommand):
    help = __doc__

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--supervisord",
            nargs="?",
            const="master",
            choices=["master", "pools"],
            help="print supervisord programs instead: one queue_supervise master (default) or one per pool",
        )
        parser.add_argument("--directory", default=str(settings.BASE_DIR), help="the checkout (default: this one)")
        parser.add_argument("--python", default=sys.executable, help="the Python to run (default: this one)")
        parser.add_argument("--user", default=None, help="run the programs as this user (default: supervisord's)")
        parser.add_argument("--log-dir", default="/var/log/vito", help="directory of the log files")
        parser.add_argument("--prefix", default="vito", help="program name prefix (default vito)")
        parser.add_argument(
            "--env-wrapper",
            default=None,
            help="a command that loads the environment and execs its arguments (e.g. devops/with-env)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not PROGRAM_PREFIX.fullmatch(options["prefix"]):
            # supervisord program names are section names: a colon or a space breaks the file it reads.
            raise CommandError(f"--prefix {options['prefix']!r}: use letters, digits, '-' or '_'", returncode=2)
        try:
            configs = parse_supervisors(settings.QUEUE_SUPERVISORS, settings.RQ_QUEUES)
        except ImproperlyConfigured as exc:
            raise CommandError(f"{exc}. Fix the queue layout and run again.", returncode=2) from None
        autodiscover_jobs()
        jobs = registered()
        if options["supervisord"]:
            target = Target(
                directory=options["directory"],
                python=options["python"],
                user=options["user"],
                log_dir=options["log_dir"].rstrip("/"),
                prefix=options["prefix"],
                wrapper=options["env_wrapper"],
            )
            render = master_programs if options["supervisord"] == "master" else pool_programs
            self.stdout.write(render(configs, settings.RQ_QUEUES, jobs, target), ending="")
            return
        self._print(configs, jobs)

    def _print(self, configs: list[SupervisorConfig], jobs: list[Any]) -> None:
        layout = getattr(settings, "QUEUE_LAYOUT", None)
        if layout is not None:
            self.stdout.write(f"Layout {layout.name} ({layout.path})")
            if layout.description:
                self.stdout.write(f"  {layout.description}")
        self.stdout.write("\nQueues:")
        for name, conf in settings.RQ_QUEUES.items():
            spec = layout.queues.get(name) if layout is not None else None
            tries = default_tries(name)
            line = f"  {name:<16} timeout {conf['DEFAULT_TIMEOUT']}s, tries {tries or 'per worker'}"
            line += f", alert at depth {settings.QUEUE_ALERT_DEPTH.get(name, '-')}"
            line += f" or wait {settings.QUEUE_ALERT_WAIT_SECONDS.get(name, '-')}s"
            if spec is not None and spec.description:
                line += f" — {spec.description}"
            self.stdout.write(line)
        self.stdout.write("\nRoutes (logical -> physical):")
        for logical, physical in sorted(routes().items()):
            self.stdout.write(f"  {logical:<20} -> {physical}")
        self.stdout.write("\nPools:")
        for config in configs:
            self.stdout.write(f"  {config.describe()}" + (f", nice {config.nice}" if config.nice else ""))
            self.stdout.write(f"    rqworker flags: {' '.join(config.worker_flags())}")
        self.stdout.write("\nWhat lands where (the logical queue it declares in brackets):")
        for queue, items in work_by_queue(declared_work(jobs) + scheduled_work()).items():
            self.stdout.write(f"  {queue}:" + ("" if items else " (nothing declared yet)"))
            for what, logical in items:
                self.stdout.write(f"    {what} [{logical}]")
