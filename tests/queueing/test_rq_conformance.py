"""The same RQ-level scenarios on RQ's own SimpleWorker and on VitoWorker.

Each scenario enqueues with RQ's API (``Queue.enqueue``, not our ``@job``),
runs one worker in burst mode as a separate process — ``rq worker -w
rq.worker.SimpleWorker`` or ``manage.py rqworker`` — and reads back what RQ
code can observe: each job's status, the registries it sits in, its latest
``Result``, and what the job and its callbacks wrote. Both workers must end in
the same state. Where we differ on purpose, ``DIFFERENCES`` names the field,
says why, and the test asserts our value (docs/rq-contract.md).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django_rq
import pytest
from django.conf import settings
from redis import Redis
from rq import Callback, Queue, Retry
from rq.command import send_stop_job_command
from rq.job import Dependency, Job
from rq.rate_limit import RateLimit
from rq.repeat import Repeat

from tests.queueing import rq_funcs
from tests.queueing.conftest import run_worker, start_worker, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = ("rq-simple", "vito")


@dataclass(frozen=True)
class Scenario:
    name: str
    enqueue: Callable[[Queue], dict[str, Job]]
    delay: float = 0.0  # seconds to wait before the worker starts (scheduled jobs falling due)
    ordered: bool = True  # compare the log in order (False: jobs whose order RQ leaves open)


def _success(q: Queue) -> dict[str, Job]:
    cb = {"on_success": Callback(rq_funcs.on_success), "on_failure": Callback(rq_funcs.on_failure)}
    return {"job": q.enqueue(rq_funcs.add, 2, 3, **cb)}


def _none_result(q: Queue) -> dict[str, Job]:
    return {"job": q.enqueue(rq_funcs.noop)}


def _failure(q: Queue) -> dict[str, Job]:
    cb = {"on_success": Callback(rq_funcs.on_success), "on_failure": Callback(rq_funcs.on_failure)}
    return {"job": q.enqueue(rq_funcs.explode, "boom", **cb)}


def _retries(q: Queue) -> dict[str, Job]:
    return {"job": q.enqueue(rq_funcs.explode, "again", retry=Retry(max=2), on_failure=Callback(rq_funcs.on_failure))}


def _callback_raises(q: Queue) -> dict[str, Job]:
    return {"job": q.enqueue(rq_funcs.add, 1, 1, on_success=Callback(rq_funcs.on_success_raises))}


def _dependents(q: Queue) -> dict[str, Job]:
    parent = q.enqueue(rq_funcs.add, 1, 2)
    bad = q.enqueue(rq_funcs.explode, "parent")
    return {
        "parent": parent,
        "child": q.enqueue(rq_funcs.add, 3, 4, depends_on=parent, on_success=Callback(rq_funcs.on_success)),
        "bad_parent": bad,
        "strict": q.enqueue(rq_funcs.add, 5, 5, depends_on=bad),
        "tolerant": q.enqueue(rq_funcs.add, 6, 6, depends_on=Dependency(jobs=[bad], allow_failure=True)),
    }


def _repeat_and_rate_limit(q: Queue) -> dict[str, Job]:
    limit = RateLimit("conformance", concurrency=1)
    return {
        "repeated": q.enqueue(rq_funcs.add, 2, 2, repeat=Repeat(times=2)),
        **{f"limited{n}": q.enqueue(rq_funcs.add, n, 0, rate_limit=limit) for n in (10, 20)},
    }


def _result_ttl_zero(q: Queue) -> dict[str, Job]:
    return {"job": q.enqueue(rq_funcs.add, 4, 4, result_ttl=0)}


def _scheduled(q: Queue) -> dict[str, Job]:
    from datetime import timedelta

    return {"job": q.enqueue_in(timedelta(seconds=1), rq_funcs.add, 7, 7)}


SCENARIOS = [
    Scenario("success and callbacks", _success),
    Scenario("a job returning None", _none_result),
    Scenario("failure and callbacks", _failure),
    Scenario("Retry(max=2)", _retries),
    Scenario("a success callback that raises", _callback_raises),
    Scenario("dependents", _dependents),
    Scenario("Repeat and RateLimit", _repeat_and_rate_limit, ordered=False),
    Scenario("result_ttl=0", _result_ttl_zero),
    Scenario("enqueue_in", _scheduled, delay=1.2),
]

# (scenario, job, field) -> (why we differ, our value). Empty: no known difference
# in these scenarios; stop-job is the one (test_stop_job_is_a_documented_difference).
DIFFERENCES: dict[tuple[str, str, str], tuple[str, Any]] = {}


def _rq_worker(*flags: str) -> tuple[list[str], dict[str, str]]:
    """RQ's own ``rq worker`` with SimpleWorker, on the test Redis, JSON jobs like ours."""
    rq = Path(settings.BASE_DIR) / ".venv" / "bin" / "rq"
    command = [str(rq) if rq.exists() else "rq", "worker", *flags, "-w", "rq.worker.SimpleWorker"]
    command += ["-S", "rq.serializers.JSONSerializer", "-u", str(settings.RQ_QUEUES["default"]["URL"]), "default"]
    return command, {**worker_env(), "PYTHONPATH": str(settings.BASE_DIR)}


def _run(worker: str) -> None:
    if worker == "vito":
        done = run_worker("default", "--burst")
    else:
        command, env = _rq_worker("--burst", "--with-scheduler")
        done = subprocess.run(command, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def observe(conn: Redis, queue: Queue, handles: dict[str, Job]) -> dict[str, Any]:
    """What RQ code can read back: per job, and the log the jobs and callbacks wrote."""
    registries = {
        "started": queue.started_job_registry,
        "finished": queue.finished_job_registry,
        "failed": queue.failed_job_registry,
        "deferred": queue.deferred_job_registry,
        "scheduled": queue.scheduled_job_registry,
    }
    state: dict[str, Any] = {}
    for name, handle in handles.items():
        if not conn.exists(handle.key):
            state[name] = {"status": "gone"}
            continue
        job = Job.fetch(handle.id, connection=conn, serializer=queue.serializer)
        result = job.latest_result()
        state[name] = {
            "status": str(job.get_status()),
            "registries": sorted(key for key, registry in registries.items() if job.id in registry),
            "queued": job.id in queue.job_ids,
            "result": None
            if result is None
            else (str(result.type.name), result.return_value, _last_line(result.exc_string)),
        }
    # Callbacks write job ids; the same scenario has other ids on each worker.
    names = {handle.id: name for name, handle in handles.items()}
    log = []
    for entry in rq_funcs.entries(conn):
        for job_id, name in names.items():
            entry = entry.replace(job_id, name)
        log.append(entry)
    state["log"] = log
    return state


def _scenario_state(scenario: Scenario, worker: str, conn: Redis) -> dict[str, Any]:
    conn.flushdb()
    queue = django_rq.get_queue("default")
    handles = scenario.enqueue(queue)
    if scenario.delay:
        time.sleep(scenario.delay)
    _run(worker)
    state = observe(conn, queue, handles)
    if not scenario.ordered:
        state["log"] = sorted(state["log"])
    return state


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_both_workers_end_in_the_same_state(scenario: Scenario, redis_conn: Redis) -> None:
    theirs = _scenario_state(scenario, "rq-simple", redis_conn)
    ours = _scenario_state(scenario, "vito", redis_conn)
    for (name, job, field), (why, expected) in DIFFERENCES.items():
        if name == scenario.name:
            assert ours[job][field] == expected, why
            theirs[job][field] = ours[job][field] = f"differs: {why}"
    print(f"\n{scenario.name}: {ours}")  # noqa: T201 - the state compared, shown with -s
    assert ours == theirs


def _start(worker: str) -> subprocess.Popen[str]:
    if worker == "vito":
        return start_worker("default")
    command, env = _rq_worker()
    quiet = subprocess.DEVNULL
    return subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, stdout=quiet, stderr=quiet, text=True)


def _stop_outcome(worker: str, conn: Redis, workers: list[Any]) -> tuple[str, list[str]]:
    """Start ``worker``, stop its running job with RQ's stop-job command; what happened."""
    conn.flushdb()
    queue = django_rq.get_queue("default")
    job = queue.enqueue(rq_funcs.nap, 4, on_stopped=Callback(rq_funcs.on_stopped))
    workers.append(proc := _start(worker))
    wait_for(lambda: "nap:4" in rq_funcs.entries(conn))
    send_stop_job_command(conn, job.id, serializer=queue.serializer)
    wait_for(lambda: conn.hget(job.key, "status") in {b"stopped", b"finished"}, timeout=20)
    proc.terminate()
    proc.wait(timeout=30)
    return str(job.get_status()), [e.replace(job.id, "job") for e in rq_funcs.entries(conn)]


def test_stop_job_is_a_documented_difference(redis_conn: Redis, workers: list[Any]) -> None:
    """RQ's SimpleWorker has no horse to kill, so stop-job leaves the job running to the
    end; ours interrupts it (as RQ's forking worker does). Asserted both ways."""
    assert _stop_outcome("rq-simple", redis_conn, workers) == ("JobStatus.FINISHED", ["nap:4"])
    assert _stop_outcome("vito", redis_conn, workers) == ("JobStatus.STOPPED", ["nap:4", "stopped:job"])
