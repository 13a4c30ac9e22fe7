"""Worker throughput: our VitoWorker against RQ's SimpleWorker and forking Worker.

Same run, same Redis, same no-op job (declared with @job, JSON arguments).
For each worker kind and 1 or 2 processes: the jobs are staged under another
key while the workers start and go idle, then RENAMEd onto the queue at once;
the clock runs until every job is done. Reported per process: jobs/s, worker
CPU ms per job (utime+stime from /proc), Redis commands per job (INFO
commandstats delta, minus the harness's own polling).

BENCH_JOBS (default 20000) sets the size; RQ's forking Worker gets a tenth of
it (at ~50 jobs/s it would take minutes for no extra information). Dramatiq
(one worker process per row, its default 8 threads) runs the same no-op as an
actor on the same Redis, staged and timed the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.harness import table


def _cpu_seconds(pid: int) -> float:
    """utime+stime of a process and its reaped children (forked work horses)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(") ", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def _total_calls(conn) -> int:  # type: ignore[no-untyped-def]
    return sum(v["calls"] for v in conn.info("commandstats").values())


@dataclass
class Staged:
    """One timed drain of a staged queue: what the workers did and what it cost."""

    elapsed: float
    cpu_s: float
    redis_calls: int
    pids: list[int]


def drain(
    kind: str,
    processes: int,
    jobs: int,
    args: tuple[str, ...] = (),
    observe: Callable[[str, list[int]], None] | None = None,
) -> Staged:
    """Start the workers on an emptied ``default`` while the queued jobs wait under
    another key, RENAME them onto the queue at once, and time it until every job is
    done. ``observe("idle" | "done", pids)`` looks at the workers before and after."""
    import django_rq

    from queueing.dispatch import get_queue

    queue = get_queue("default")
    conn = django_rq.get_connection("default")
    conn.rename(queue.key, "bench:staging")
    env = dict(os.environ)
    if kind == "vito":
        cmd = [sys.executable, "manage.py", "rqworker", "default", "-v", "0", "--sleep", "1", *args]
    else:
        cmd = [sys.executable, "-m", "bench.rq_worker", kind]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)
    ]
    deadline = time.monotonic() + 60
    while conn.scard("rq:workers") < processes:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind} workers did not start")
        time.sleep(0.1)
    time.sleep(1.5)  # idle and blocked on the queue
    if observe is not None:
        observe("idle", [p.pid for p in procs])
    cpu_before = sum(_cpu_seconds(p.pid) for p in procs)
    calls_before = _total_calls(conn)
    started = time.perf_counter()
    conn.rename("bench:staging", queue.key)
    polls = 0
    while True:
        done = 0
        for key in conn.smembers("rq:workers"):
            done += int(conn.hget(key, "successful_job_count") or 0)
            polls += 1
        polls += 1
        if done >= jobs:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    calls = _total_calls(conn) - calls_before - polls - 2  # minus our polling, RENAME and INFO
    cpu = sum(_cpu_seconds(p.pid) for p in procs) - cpu_before
    pids = [p.pid for p in procs]
    staged = Staged(elapsed, cpu, calls, pids)
    if observe is not None:
        observe("done", pids)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)
    return staged


def _run(kind: str, processes: int, jobs: int, unique: bool = False, concurrency: int = 1) -> list[str]:
    import django_rq

    from bench.jobs import noop, unique_noop

    django_rq.get_connection("default").flushdb()
    definition = unique_noop if unique else noop
    definition.dispatch_many([(i,) for i in range(jobs)], chunk_size=2000)
    args = ("--concurrency", str(concurrency)) if concurrency > 1 else ()
    staged = drain(kind, processes, jobs, args)
    rate = jobs / staged.elapsed
    name = {"vito": "VitoWorker", "simple": "RQ SimpleWorker", "fork": "RQ Worker (fork)"}[kind]
    if concurrency > 1:
        name += f" --concurrency {concurrency}"
    if unique:
        name += " + unique lock"
    return [name, str(processes), f"{jobs:,}", f"{rate:,.0f}", f"{rate / processes:,.0f}",
            f"{staged.cpu_s * 1000 / jobs:.2f}", f"{staged.redis_calls / jobs:.1f}"]  # fmt: skip


def _run_dramatiq(processes: int, jobs: int) -> list[str]:
    """Dramatiq's no-op on ``processes`` worker processes of 8 threads each.

    Its messages live in ``dramatiq:default`` (ids) and ``dramatiq:default.msgs``
    (bodies, deleted on ack): both are staged under other keys while the workers
    start, renamed back at once, and the run is over when the bodies are gone.
    """
    import django_rq
    import psutil

    conn = django_rq.get_connection("default")
    conn.flushdb()
    from bench.dramatiq_jobs import broker, noop

    for i in range(jobs):
        noop.send(i)
    conn.rename("dramatiq:default.msgs", "bench:staging.msgs")
    conn.rename("dramatiq:default", "bench:staging")
    cmd = [sys.executable, "-m", "dramatiq", "bench.dramatiq_jobs", "--processes", str(processes), "--threads", "8"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while conn.zcard("dramatiq:__heartbeats__") < processes:
        if time.monotonic() > deadline:
            raise RuntimeError("dramatiq workers did not start")
        time.sleep(0.1)
    time.sleep(1.5)
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]

    def cpu() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in tree)

    cpu_before, calls_before = cpu(), _total_calls(conn)
    started = time.perf_counter()
    conn.rename("bench:staging.msgs", "dramatiq:default.msgs")
    conn.rename("bench:staging", "dramatiq:default")
    polls = 0
    while True:
        polls += 1
        if not conn.hlen("dramatiq:default.msgs"):
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    calls = _total_calls(conn) - calls_before - polls - 3  # minus our polling, the RENAMEs and INFO
    cpu_s = cpu() - cpu_before
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    broker.close()
    rate = jobs / elapsed
    return [f"Dramatiq {dramatiq_version()} (8 threads)", str(processes), f"{jobs:,}", f"{rate:,.0f}",
            f"{rate / processes:,.0f}", f"{cpu_s * 1000 / jobs:.2f}", f"{calls / jobs:.1f}"]  # fmt: skip


def dramatiq_version() -> str:
    from importlib.metadata import version

    return version("dramatiq")


def run() -> None:
    jobs = int(os.environ.get("BENCH_JOBS", "20000"))
    rows = []
    for processes in (1, 2):
        rows.append(_run("simple", processes, jobs))
        rows.append(_run("vito", processes, jobs))
        rows.append(_run("vito", processes, jobs, concurrency=8))
        rows.append(_run_dramatiq(processes, jobs))
        rows.append(_run("vito", processes, jobs, unique=True))
        rows.append(_run("fork", processes, max(200, jobs // 10)))
    baseline = {r[1]: float(r[4].replace(",", "")) for r in rows if r[0] == "RQ SimpleWorker"}
    for row in rows:
        row.append(f"{float(row[4].replace(',', '')) / baseline[row[1]]:.2f}x")
    table(
        "Worker throughput, no-op jobs (ratio: jobs/s per process vs RQ SimpleWorker, same process count)",
        ["worker", "procs", "jobs", "jobs/s", "jobs/s/proc", "CPU ms/job", "Redis cmds/job", "vs Simple"],
        rows,
    )
