"""Worker concurrency: jobs that wait 50 ms, and the worker's memory.

- 50 ms jobs (``time.sleep``, standing in for an SMTP send or a webhook call)
  on one VitoWorker at ``--concurrency`` 1, 8 and 32: jobs/s, and the ratio to
  N × the single-job rate measured in the same run (the goal: at least 0.8).
- RSS of one worker at ``--concurrency 8``: idle with Django loaded, after its
  first 1,000 no-op jobs (imports and caches warmed), and after 100,000
  (BENCH_RSS_JOBS); growth is against the warmed figure and against idle.

Same staging as bench.worker_throughput: jobs wait under another key while
the worker starts, then are RENAMEd onto the queue at once.
"""

from __future__ import annotations

import os

from bench.harness import table
from bench.worker_throughput import drain

WAIT_MS = 50
LEVELS = (1, 8, 32)
SECONDS_PER_LEVEL = 8  # each level runs about this long at its ideal rate


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _waiting_jobs() -> list[list[str]]:
    import django_rq

    from bench.jobs import waits

    rows = []
    single = 0.0
    for level in LEVELS:
        jobs = int(SECONDS_PER_LEVEL * level * 1000 / WAIT_MS)
        django_rq.get_connection("default").flushdb()
        waits.dispatch_many([(WAIT_MS,) for _ in range(jobs)], chunk_size=2000)
        args = ("--concurrency", str(level)) if level > 1 else ()
        rate = jobs / drain("vito", 1, jobs, args).elapsed
        single = single or rate
        ideal = level * single
        rows.append([str(level), f"{jobs:,}", f"{rate:,.1f}", f"{ideal:,.1f}", f"{rate / ideal:.2f}"])
    return rows


def _memory() -> list[list[str]]:
    import django_rq

    from bench.jobs import noop

    total = int(os.environ.get("BENCH_RSS_JOBS", "100000"))
    seen: dict[str, float] = {}

    def observe(moment: str, pids: list[int]) -> None:
        seen[moment] = _rss_mb(pids[0])

    conn = django_rq.get_connection("default")
    conn.flushdb()
    noop.dispatch_many([(i,) for i in range(1000)], chunk_size=2000)
    warm_seen: dict[str, float] = {}
    drain("vito", 1, 1000, ("--concurrency", "8"), lambda m, p: warm_seen.__setitem__(m, _rss_mb(p[0])))
    conn.flushdb()
    noop.dispatch_many([(i,) for i in range(total)], chunk_size=5000)
    drain("vito", 1, total, ("--concurrency", "8"), observe)
    idle, warm, after = seen["idle"], warm_seen["done"], seen["done"]
    return [
        ["idle, Django loaded", f"{idle:.1f}", "–", "–"],
        ["after 1,000 jobs (warm)", f"{warm:.1f}", f"{(warm / idle - 1):+.1%}", "–"],
        [f"after {total:,} jobs", f"{after:.1f}", f"{(after / idle - 1):+.1%}", f"{(after / warm - 1):+.1%}"],
    ]


def run() -> None:
    table(
        f"Jobs that wait {WAIT_MS} ms on one VitoWorker (ratio: jobs/s vs N x the --concurrency 1 rate, same run)",
        ["--concurrency", "jobs", "jobs/s", "N x single", "ratio"],
        _waiting_jobs(),
    )
    table(
        "Worker RSS at --concurrency 8, no-op jobs (goal: idle < 80 MB, growth < 10%)",
        ["moment", "RSS MB", "vs idle", "vs warm"],
        _memory(),
    )
