"""The benchmark's job: a no-op, declared like any job in the catalog."""

from __future__ import annotations

from queueing.definitions import job


@job(queue="default")
def noop(n: int) -> None:
    return None


@job(queue="default", unique_for=300)
def unique_noop(n: int) -> None:
    return None


@job(queue="high", timeout=30)
def stamp(sent_at: float) -> None:
    """The isolation benchmark's high job: records how long it waited."""
    import time

    import django_rq

    django_rq.get_connection("default").rpush("bench:waits", time.time() - sent_at)


@job(queue="default", timeout=30)
def brief(n: int) -> None:
    """A short default job (an e-mail's worth of work)."""
    import time

    time.sleep(0.002)


@job(queue="default", timeout=1800, tries=1)
def hold(seconds: float) -> None:
    """A job declared to run up to 30 minutes (an export); here it holds ``seconds``."""
    import time

    time.sleep(seconds)


@job(queue="default", timeout=30)
def waits(ms: float) -> None:
    """A job that waits on the network for ``ms`` (an SMTP send, a webhook call)."""
    import time

    time.sleep(ms / 1000)
