"""Worker faults: SIGTERM (graceful, then forced) and SIGKILL under load."""

from __future__ import annotations

import signal
import time

import pytest

from chaos import effects, jobs
from chaos.cluster import Cluster, wait_for
from orders.models import Product
from queueing.models import FailedJob

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.fast
def test_sigterm_finishes_the_job_in_hand(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    [pid] = effects.products(1)
    jobs.slow_effect.dispatch(pid, 5)
    worker = cluster.worker("default")
    wait_for(lambda: jobs.executions(pid) == 1, timeout=60)
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = worker.wait(timeout=60)
    took = time.monotonic() - started
    lost, twice = effects.tally([pid])
    record("SIGTERM during a 5 s job", load="1 job of 5 s", fault="SIGTERM once",
           lost=lost, duplicated=twice, recovered=took)  # fmt: skip
    assert code == 0, worker.output()[-2000:]
    assert (lost, twice) == (0, 0)
    assert jobs.executions(pid) == 1


@pytest.mark.fast
def test_second_sigterm_stops_at_once_and_the_job_is_retried(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    [pid] = effects.products(1)
    jobs.slow_effect.dispatch(pid, 5)
    worker = cluster.worker("default")
    wait_for(lambda: jobs.executions(pid) == 1, timeout=60)
    worker.signal(signal.SIGTERM)
    time.sleep(1.2)  # RQ treats a repeat within 1 s as the same delivery
    stopped = time.monotonic()
    worker.signal(signal.SIGTERM)
    worker.wait(timeout=10)
    stop_took = time.monotonic() - stopped
    assert Product.objects.get(pk=pid).stock_quantity == 0  # cut before its effect
    cluster.worker("default")  # the replacement retries it
    wait_for(lambda: Product.objects.get(pk=pid).stock_quantity == 1, timeout=120)
    recovered = time.monotonic() - stopped
    lost, twice = effects.tally([pid])
    record("second SIGTERM", load="1 job of 5 s", fault="SIGTERM twice",
           lost=lost, duplicated=twice, recovered=recovered)  # fmt: skip
    assert stop_took < 3
    assert (lost, twice) == (0, 0)
    assert jobs.executions(pid) == 2
    assert not FailedJob.objects.exists()
