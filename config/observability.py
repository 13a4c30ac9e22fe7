"""Error reporting to Sentry (or any server speaking its protocol), on when SENTRY_DSN is set.

Sentry's own integrations do the work: Django's for requests, RQ's for jobs.
RQ's wraps the worker's ``perform_job`` and ``handle_exception``, which every
job on our workers goes through (queueing/worker/execution.py), so a job that
fails for the last time arrives with its name, id and queue; an attempt that
will be retried does not (Sentry's rule, as on RQ's own workers).
docs/operations.md, "Error reports".
"""

from __future__ import annotations


def init_sentry(dsn: str, *, environment: str, release: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import ignore_logger
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
        # Job arguments and request bodies carry customers' data: not sent.
        send_default_pii=False,
        integrations=[DjangoIntegration(), RqIntegration()],
    )
    # A job's failure arrives once, from the RQ integration: the settling's own
    # ERROR line about it would be a second event (Sentry ignores rq.worker's alike).
    ignore_logger("queueing.failures")
