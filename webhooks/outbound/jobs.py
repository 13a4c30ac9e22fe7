"""The delivery jobs, on logical queue ``webhook-deliveries`` (``default`` in
Vito's layout, ``analytics`` in the QR app's). Thin: webhooks.outbound.sending
does the work."""

from __future__ import annotations

from queueing.definitions import job
from webhooks.outbound.sending import drain, has_due, lane_lock, lanes

QUEUE = "webhook-deliveries"


@job(
    queue=QUEUE,
    timeout=300,
    tries=3,
    # One queued job per lane is enough: the running one drains until nothing is due.
    unique_for=600,
    unique_until_processing=True,
    unique_key=lambda endpoint_id, lane=0: f"{endpoint_id}:{lane}",
)
def send_deliveries(endpoint_id: int, lane: int = 0) -> None:
    """Drain one lane of an endpoint; requeue itself when its budget runs out."""
    while True:
        with lane_lock(endpoint_id, lane) as held:
            if not held:
                return  # another job holds this lane and will see our deliveries
            more = drain(endpoint_id)
        if more:
            send_deliveries.dispatch(endpoint_id, lane)
            return
        # A delivery that arrived while we held the lane found it taken and
        # left it to us: look once more after letting go.
        if not has_due(endpoint_id):
            return


@job(queue=QUEUE, timeout=60, tries=3)
def wake(endpoint_id: int) -> None:
    """A retry's time has come (dispatched with the delay): start the lanes."""
    send_deliveries.dispatch_many([(endpoint_id, lane) for lane in lanes()])


@job(queue=QUEUE, timeout=60, tries=1)
def sweep_deliveries() -> int:
    """Every 10 s: wake endpoints with due deliveries nobody is sending —
    dispatches lost to a crash between commit and enqueue, expired leases."""
    from django.utils import timezone

    from webhooks.outbound.models import Delivery

    due = (
        Delivery.objects.filter(
            status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now(), endpoint__enabled=True
        )
        .values_list("endpoint_id", flat=True)
        .distinct()[:1000]
    )
    endpoints = list(due)
    if endpoints:
        send_deliveries.dispatch_many([(pk, lane) for pk in endpoints for lane in lanes()])
    return len(endpoints)
