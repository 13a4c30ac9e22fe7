"""The queue master (``queue_supervise``) SIGKILLed while its children work."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from chaos import effects
from chaos.cluster import Cluster, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.fast
def test_master_sigkilled_children_finish_and_a_new_master_takes_over(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    ids = effects.products(120)
    config = [{"name": "chaos", "queues": ["default"], "balance": "off", "processes": 2, "sleep": 1}]
    env = cluster.env(QUEUE_SUPERVISORS_JSON=json.dumps(config))
    master = cluster.manage("master", "queue_supervise", env=env)
    cluster.relay()
    for pid in ids:
        effects.publish_tally(pid, sleep=0.2)
    wait_for(lambda: effects.some_done(ids, 20), timeout=90, step=0.2)
    children = [child for child in psutil.Process(master.pid).children() if "rqworker" in " ".join(child.cmdline())]
    assert len(children) == 2
    master.kill()
    killed = time.monotonic()
    # PR_SET_PDEATHSIG: each child gets SIGTERM, finishes the job in hand, exits.
    _, alive = psutil.wait_procs(children, timeout=30)
    orphans = len(alive)
    cluster.manage("master", "queue_supervise", env=env)  # what supervisord does next
    wait_for(lambda: effects.done(ids), timeout=120)
    lost, twice = effects.tally(ids)
    record("queue master SIGKILLed", load="120 outbox jobs of 0.2 s, 2 children", fault="SIGKILL the master",
           lost=lost, duplicated=twice, recovered=time.monotonic() - killed)  # fmt: skip
    assert orphans == 0, [p.pid for p in alive]
    assert (lost, twice) == (0, 0)
