from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class OutboxConfig(AppConfig):
    name = "outbox"

    def ready(self) -> None:
        # Extra route registrations (plugins, tests) named in settings; domain
        # apps register theirs in their own AppConfig.ready.
        for module in getattr(settings, "OUTBOX_ROUTE_MODULES", []):
            import_module(module)
        # Each route's handler queue, for `manage.py check` and queue_topology.
        from outbox.routes import declared_queues
        from queueing.topology import register_source

        register_source("outbox", declared_queues)
        from outbox.status import outbox_status
        from queueing.status import register

        register("outbox", outbox_status)
        # The queue dashboard's outbox panel offers replay without queueing importing us.
        from queueing.status import register_action

        register_action(
            "outbox",
            "replay_dead",
            "Replay dead messages",
            replay_dead,
            confirm="Deliver every dead outbox message again (handlers that already ran skip it)?",
        )
        # Processed messages (and their inbox rows) go with the nightly purge;
        # pending, dispatched and dead ones are never purged.
        from django.db.models import Q

        from outbox.models import OutboxMessage
        from queueing.retention import Kind, register_kind

        register_kind(
            Kind(
                "outbox_messages",
                OutboxMessage,
                "processed_at",
                default_days=7,
                description="processed outbox messages and their inbox rows",
                still_needed=lambda now: ~Q(status=OutboxMessage.Status.PROCESSED),
                after_delete=forget_inbox,
            )
        )


def forget_inbox(message_ids: list[int]) -> None:
    """The de-duplication rows of purged messages (their handlers can never see them again)."""
    from outbox.models import InboxEntry

    InboxEntry.objects.filter(message_id__in=message_ids).delete()


REPLAY_BATCH = 1000  # one click replays at most this many, oldest first; outbox_replay does ranges of any size


def replay_dead() -> str:
    from outbox.models import OutboxMessage
    from outbox.services import outbox_replay

    ids = list(
        OutboxMessage.objects.filter(status=OutboxMessage.Status.DEAD)
        .order_by("id")
        .values_list("pk", flat=True)[:REPLAY_BATCH]
    )
    count = outbox_replay(ids=ids)
    return f"Replayed {count} dead outbox message(s)." if count else "No dead outbox message to replay."
