"""List unique-job locks, or force-release them (``--release KEY`` / ``--release-all``).

A lock exists while a unique job is queued or running and expires by itself
after the job's ``unique_for``; releasing one lets the same job be dispatched
again at once.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing import unique
from queueing.commands import audit_command
from queueing.dispatch import redis_connection


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--release", metavar="KEY", action="append", help="release this lock (repeatable)")
        group.add_argument("--release-all", action="store_true", help="release every unique-job lock")

    def handle(self, *args: Any, **options: Any) -> None:
        conn = redis_connection()
        if options["release_all"]:
            released = sum(unique.force_release(conn, lock.key) for lock in unique.list_locks(conn))
            audit_command("unlock", "locks:all", released=released)
            self.stdout.write(f"Released {released} lock(s).")
            return
        if options["release"]:
            for key in options["release"]:
                try:
                    done = unique.force_release(conn, key)
                except ValueError as exc:
                    raise CommandError(str(exc), returncode=2) from None
                audit_command("unlock", key, released=bool(done))
                self.stdout.write(f"{'Released' if done else 'No such lock'}: {key}")
            return
        locks = unique.list_locks(conn)
        if not locks:
            self.stdout.write("No unique-job locks.")
        for lock in locks:
            self.stdout.write(f"{lock.key}  job={lock.job_id}  expires in {lock.ttl}s")
