"""The periodic schedule: one table, run by ``manage.py schedule_work``.

Later issues add their entries here (stale orders every 15 minutes, daily
analytics, the outbox safety net...). Times are UTC.
"""

from django.conf import settings

from queueing.scheduler import Entry


def _per_queue() -> list[Entry]:
    """Entries every physical queue of the layout gets, on that queue itself."""
    entries = []
    for name in settings.RQ_QUEUES:
        # Proves the queue is consumed: a no-op on it that stamps the time.
        entries.append(Entry(f"queue-heartbeat-{name}", "queueing.jobs.heartbeat", every=60, args=(name,), queue=name))
        # Alerts (queueing.alerts) on every queue, so a queue whose workers died is still
        # reported by the others'; the Redis lock and the alert state make repeats no-ops.
        entries.append(Entry(f"queue-alerts-{name}", "queueing.jobs.check_alerts", every=60, args=(name,), queue=name))
    return entries


SCHEDULE = [
    *_per_queue(),
    # End to end: probe every queue, and check the previous probes ran.
    Entry("queue-smoke-test", "queueing.jobs.smoke_test", cron="*/5 * * * *"),
    # Job metrics: five minutes of per-minute Redis counters into PostgreSQL history.
    Entry("queue-snapshot", "queueing.jobs.snapshot", cron="*/5 * * * *"),
    # SendAppointmentReminders: 24-hour and 2-hour reminders, one send job each (claimed).
    Entry("appointment-reminders", "appointments.jobs.send_appointment_reminders", cron="*/5 * * * *"),
    # RecordInteraction: tracking hits buffered in Redis into Interaction rows, in batches.
    Entry("tracking-record", "analytics.jobs.record_interactions", every=60),
    # link.scanned: per subscribed tenant, one outbox message with its redirect scans since the last.
    Entry("link-scans-publish", "tenants.jobs.publish_link_scans", every=60),
    # SyncAnalyticsJob: yesterday's figures, one SyncTenantAnalytics per approved tenant
    # (no args: the job takes "yesterday" when it runs; the 15 minutes let the drain finish).
    Entry("analytics-daily", "analytics.jobs.sync_analytics", cron="15 0 * * *"),
    # AuditTenantLimits: usage against plan limits; owners e-mailed once per month at 90% and once over.
    Entry("tenant-limits-audit", "analytics.jobs.audit_tenant_limits", cron="30 1 * * *"),
    # ReleaseStaleOrders: PENDING orders older than 30 minutes give their stock back.
    Entry("release-stale-orders", "orders.jobs.release_stale_orders", cron="*/15 * * * *"),
    # The outbox: safety-net relay pass, stuck-message repair.
    Entry("outbox-process", "outbox.jobs.relay_safety_net", cron="* * * * *"),
    Entry("outbox-coroner", "outbox.jobs.coroner", cron="*/5 * * * *"),
    # Outbound webhooks: wake endpoints whose due deliveries nobody is sending
    # (a dispatch lost between commit and enqueue, a dead sender's lease).
    Entry("webhook-deliveries-sweep", "webhooks.outbound.jobs.sweep_deliveries", every=10),
    # The retention purge: every registered kind of old record (processed outbox
    # messages included) and orphaned files, by the policies in docs/retention.md.
    Entry("retention-purge", "queueing.jobs.purge", cron="0 0 * * *"),
]
