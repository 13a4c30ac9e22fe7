"""Run a worker: ``manage.py rqworker high default`` (Laravel's ``queue:work``).

Queues are drained in the order given: no job is taken from ``default`` while
``high`` has one. The worker is one long-lived process (no fork per job) that
recycles itself: after ``--max-jobs`` jobs, ``--max-time`` seconds, or when its
RSS passes ``--memory`` MB, it finishes the job in hand and exits 0 so its
supervisor starts a fresh one. SIGTERM: finish the job in hand, exit 0; a
second SIGTERM: stop now (the interrupted job is retried or failed, not lost).
``--concurrency N`` runs up to N jobs at once in threads, with the same rules
for each (docs/runtime.md, "Concurrency").
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing.definitions import Exponential


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def _positive_int(value: str) -> int:
    number = _positive_float(value)
    if number != int(number):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return int(number)


def _backoff(value: str) -> list[int] | Exponential:
    """``10,30,60`` (seconds per retry) or ``exp:BASE:CAP``."""
    if value.startswith("exp:"):
        try:
            _, base, cap = value.split(":")
            return Exponential(base=float(base), cap=float(cap))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected exp:BASE:CAP, got {value!r}") from None
    try:
        delays = [int(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 10,30,60, got {value!r}") from None
    if any(d < 0 for d in delays):
        raise argparse.ArgumentTypeError(f"backoff seconds cannot be negative: {value!r}")
    return delays


class Command(BaseCommand):
    help = __doc__
    # The checks of what a worker runs (see handle). The URLconf, admin and
    # template checks import every view, DRF, the OpenAPI generator and the
    # admin's templates: ~25 MB a worker never uses (docs/benchmarks.md, RSS).
    requires_system_checks: list[str] = []
    WORKER_CHECKS = ("caches", "queueing", "project")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "queues", nargs="*", default=["default"], help="queues in priority order (default: default)"
        )
        parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
        parser.add_argument(
            "--concurrency",
            type=_positive_int,
            default=1,
            metavar="N",
            help="jobs in flight in this process, each in a thread of its own (default 1). For queues whose "
            "jobs wait on the network (e-mail, webhooks, AI providers); keep 1 for CPU-bound work",
        )
        parser.add_argument("--name", help="worker name (default: random)")
        parser.add_argument("--max-jobs", type=_positive_int, help="exit 0 after this many jobs")
        parser.add_argument("--max-time", type=_positive_float, help="exit 0 after this many seconds")
        parser.add_argument(
            "--memory", type=_positive_float, help="exit 0 once RSS exceeds this many MB (checked after each job)"
        )
        parser.add_argument(
            "--sleep", type=_positive_float, default=3, help="seconds to wait for a job when idle (default 3)"
        )
        parser.add_argument(
            "--tries", type=_positive_int, default=1, help="attempts for jobs that declare none (default 1)"
        )
        parser.add_argument("--backoff", type=_backoff, help="retry delays for those jobs: 10,30,60 or exp:BASE:CAP")
        parser.add_argument("--timeout", type=_positive_int, help="seconds a job may run when it declares none")
        parser.add_argument(
            "--borrow-max-timeout",
            type=_positive_int,
            metavar="SECONDS",
            help="from every queue after the first, take only jobs whose timeout is at most this "
            "(a high worker that helps with short default jobs but never sits in a long one)",
        )
        # Accepted for compatibility with django-rq's command line; jobs are always JSON.
        parser.add_argument("--serializer", help=argparse.SUPPRESS)
        parser.add_argument("--worker-class", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        from queueing.dispatch import get_queue
        from queueing.worker import VitoWorker

        self.check(tags=list(self.WORKER_CHECKS))

        names: list[str] = options["queues"]
        unknown = [n for n in names if n not in settings.RQ_QUEUES]
        if unknown:
            raise CommandError(
                f"unknown queue(s): {', '.join(unknown)}; configured: {', '.join(settings.RQ_QUEUES)}", returncode=2
            )
        if options["serializer"] and not options["serializer"].endswith("JSONSerializer"):
            raise CommandError("jobs are JSON; --serializer must be rq.serializers.JSONSerializer", returncode=2)
        queues = [get_queue(n) for n in names]
        worker = VitoWorker(
            queues,
            name=options["name"],
            connection=queues[0].connection,
            serializer=queues[0].serializer,
            sleep=options["sleep"],
            max_time=options["max_time"],
            memory_mb=options["memory"],
            tries=options["tries"],
            backoff=options["backoff"],
            timeout=options["timeout"],
            borrow_max_timeout=options["borrow_max_timeout"],
            concurrency=options["concurrency"],
            all_queues=[get_queue(n) for n in settings.RQ_QUEUES],
        )
        level = {0: "WARNING", 1: "INFO"}.get(options["verbosity"], "DEBUG")
        logging.getLogger("queueing").setLevel(level)
        worker.work(burst=options["burst"], logging_level=level, max_jobs=options["max_jobs"])
        sys.stdout.flush()
