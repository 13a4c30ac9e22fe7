"""The periodic schedule: one table, run by ``manage.py schedule_work``.

Later issues add their entries here (stale orders every 15 minutes, daily
analytics, the outbox safety net...). Times are UTC.
"""

from queueing.scheduler import Entry

SCHEDULE = [
    # Proves each queue is consumed: a no-op on that queue that stamps the time.
    Entry("queue-heartbeat-default", "queueing.jobs.heartbeat", every=60, args=("default",), queue="default"),
    Entry("queue-heartbeat-high", "queueing.jobs.heartbeat", every=60, args=("high",), queue="high"),
    # End to end: probe every queue, and check the previous probes ran.
    Entry("queue-smoke-test", "queueing.jobs.smoke_test", cron="*/5 * * * *"),
    # Job metrics: five minutes of per-minute Redis counters into PostgreSQL history.
    Entry("queue-snapshot", "queueing.jobs.snapshot", cron="*/5 * * * *"),
    # ReleaseStaleOrders: PENDING orders older than 30 minutes give their stock back.
    Entry("release-stale-orders", "orders.jobs.release_stale_orders", cron="*/15 * * * *"),
    # The outbox: safety-net relay pass, stuck-message repair, daily pruning.
    Entry("outbox-process", "outbox.jobs.relay_safety_net", cron="* * * * *"),
    Entry("outbox-coroner", "outbox.jobs.coroner", cron="*/5 * * * *"),
    Entry("outbox-prune", "outbox.jobs.prune", cron="0 4 * * *", args=(7,)),
]
