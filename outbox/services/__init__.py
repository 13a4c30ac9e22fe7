"""Writes on the outbox, by stage: publishing, dispatching (the relay),
delivery (one message, or a batch of them), maintenance (coroner, replay, prune); reads are in
``outbox.selectors``. The names stay importable from ``outbox.services``.
docs/outbox.md."""

from outbox.job_ids import delivery_job_ids
from outbox.selectors import (
    StuckReport,
    outbox_counts,
    outbox_find_stuck,
    outbox_prune_left,
    outbox_replay_queryset,
)
from outbox.services.batches import BatchReport, Policy, outbox_deliver_batch, outbox_hand_on
from outbox.services.delivery import outbox_deliver, outbox_mark_dead
from outbox.services.dispatching import (
    outbox_redispatch,
    outbox_redispatch_lost,
    outbox_relay_drain,
    outbox_relay_pass,
)
from outbox.services.maintenance import outbox_coroner_run, outbox_prune, outbox_replay
from outbox.services.publishing import (
    NOTIFY_CHANNEL,
    OutsideTransaction,
    notify,
    outbox_insert_and_publish,
    outbox_publish,
    outbox_publish_many,
)

__all__ = [
    "NOTIFY_CHANNEL",
    "BatchReport",
    "OutsideTransaction",
    "Policy",
    "StuckReport",
    "delivery_job_ids",
    "notify",
    "outbox_coroner_run",
    "outbox_counts",
    "outbox_deliver",
    "outbox_deliver_batch",
    "outbox_find_stuck",
    "outbox_hand_on",
    "outbox_insert_and_publish",
    "outbox_mark_dead",
    "outbox_prune",
    "outbox_prune_left",
    "outbox_publish",
    "outbox_publish_many",
    "outbox_redispatch",
    "outbox_redispatch_lost",
    "outbox_relay_drain",
    "outbox_relay_pass",
    "outbox_replay",
    "outbox_replay_queryset",
]
