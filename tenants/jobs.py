"""Background jobs of the tenants side that have no module of their own."""

from __future__ import annotations

from queueing.definitions import job


# Every minute on the schedule. Unique so a slow run and the next tick do not
# pile up (two at once would still publish each scan once: the cursor's row
# lock). Not retried: the next minute's run publishes whatever this one left.
@job(queue="webhook-deliveries", timeout=60, tries=1, unique_for=60)
def publish_link_scans() -> int:
    """``link.scanned``: per tenant subscribed to it, one outbox message with its new redirect scans."""
    from tenants.tracking.scans import link_scans_publish

    return link_scans_publish()
