"""Deliver a range of outbox messages again (Laravel's ``outbox:replay``).

Select with ``--from-id/--to-id`` or ``--since/--until`` (ISO 8601), narrowed
by ``--event`` and ``--tenant``. Processed messages are included: that is the
point. Handlers that already handled a message SKIP it (the inbox remembers
them) unless you pass ``--force-handlers``, which forgets their inbox rows so
they run again — use it only for handlers whose effects are safe to repeat.
``--dry-run`` lists what would be replayed and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lib.arguments import non_empty, positive_int
from outbox.services import outbox_relay_drain, outbox_replay, outbox_replay_queryset
from queueing.commands import audit_command


def _when(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError as exc:  # well formed but impossible: 2024-02-30T00:00
        raise CommandError(f"{flag}: not an ISO 8601 date-time: {value!r} ({exc})", returncode=2) from None
    if parsed is None:
        raise CommandError(f"{flag}: not an ISO 8601 date-time: {value!r}", returncode=2)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from-id", type=positive_int, metavar="ID", help="first message id (inclusive)")
        parser.add_argument("--to-id", type=positive_int, metavar="ID", help="last message id (inclusive)")
        parser.add_argument("--since", help="created at or after (ISO 8601)")
        parser.add_argument("--until", help="created before (ISO 8601)")
        parser.add_argument("--event", type=non_empty, help="only this event type")
        parser.add_argument("--tenant", type=positive_int, metavar="ID", help="only this tenant id")
        parser.add_argument("--force-handlers", action="store_true", help="run handlers even if they already ran")
        parser.add_argument("--dry-run", action="store_true", help="show what would be replayed")

    def handle(self, *args: Any, **options: Any) -> None:
        since, until = _when(options["since"], "--since"), _when(options["until"], "--until")
        if options["from_id"] is None and options["to_id"] is None and since is None and until is None:
            raise CommandError("give a range: --from-id/--to-id or --since/--until", returncode=2)
        if options["from_id"] is not None and options["to_id"] is not None and options["from_id"] > options["to_id"]:
            raise CommandError("--from-id is after --to-id (reversed range)", returncode=2)
        if since and until and since >= until:
            raise CommandError("--since is not before --until (reversed range)", returncode=2)
        rows = outbox_replay_queryset(
            from_id=options["from_id"],
            to_id=options["to_id"],
            since=since,
            until=until,
            event=options["event"],
            tenant=options["tenant"],
        )
        ids = list(rows.values_list("id", flat=True))
        if options["dry_run"]:
            for row in rows[:50]:
                self.stdout.write(
                    f"  #{row.pk} {row.event_type} {row.aggregate_type}:{row.aggregate_id} ({row.status})"
                )
            self.stdout.write(
                f"Would replay {len(ids)} message(s){' forcing handlers' if options['force_handlers'] else ''}."
            )
            return
        if not ids:
            # Most likely a mistyped range or filter; and nothing to replay must not
            # run the relay either (that is the relay's job, not a replay's side effect).
            raise CommandError(
                "no outbox message matches that selection; nothing was replayed (--dry-run lists what matches)",
                returncode=2,
            )
        count = outbox_replay(ids=ids, force_handlers=options["force_handlers"])
        moved = outbox_relay_drain()
        selection = {key: options[key] for key in ("from_id", "to_id", "event", "tenant") if options[key] is not None}
        selection |= {key: value.isoformat() for key, value in (("since", since), ("until", until)) if value}
        audit_command("replay", "outbox", **selection, replayed=count, force_handlers=options["force_handlers"])
        self.stdout.write(f"Replayed {count} message(s); relay moved {moved}.")
