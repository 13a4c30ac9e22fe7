"""A schedule for the two-schedulers scenario: every tick enqueues one ``chaos.jobs.tick``."""

from queueing.scheduler import Entry

ENTRIES = [
    Entry("chaos-every-10s", "chaos.jobs.tick", every=10, args=("every-10s",)),
    Entry("chaos-every-minute", "chaos.jobs.tick", cron="* * * * *", args=("every-minute",)),
    Entry("chaos-every-5-minutes", "chaos.jobs.tick", cron="*/5 * * * *", args=("every-5-minutes",)),
]
