"""A fast schedule for the scheduler tests."""

from queueing.scheduler import Entry

SCHEDULE = [
    Entry("every-second", "tests.queueing.jobs.record", every=1, args=("tick",)),
]
