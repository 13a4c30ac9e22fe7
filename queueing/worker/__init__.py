"""VitoWorker: a long-lived, non-forking RQ worker (Laravel's ``queue:work``).

What it keeps from RQ: job and queue formats, worker registration (rqstats and
the admin see it), StartedJobRegistry / FailedJobRegistry / ScheduledJobRegistry,
Retry, signal semantics, and the worker's per-job methods: every job goes
through RQ's own ``perform_job`` and every failure through ``handle_exception``,
so what the ecosystem hooks there (Sentry's and OpenTelemetry's RQ
integrations, ``push_exc_handler``) sees our jobs. What it does its own way, for
speed and safety:

- one process runs job after job (no fork per job), with the per-job timeout
  enforced by SIGALRM (by a watchdog in threaded mode) and Django's DB
  connections checked around every job;
- a job is taken from the queues *and* claimed in one Lua call, in strict
  queue order, and its claim is kept alive by a heartbeat, so a kill at any
  instant never loses it (the claim protocol: queueing/claims.py);
- success costs one pipelined round trip (~6 commands), not RQ's ~50;
- pause/continue per queue, ``queue_restart``, ``--max-jobs``, ``--max-time``
  and ``--memory`` make it finish the job in hand and exit 0 for its supervisor;
- ``--concurrency N`` runs up to N jobs at once in job threads, each with the
  same guarantees, the timeout enforced from a watchdog thread.

The loop (claiming, waiting, maintenance, signals) is in ``loop.py``; one job's
execution and settling, behind RQ's per-job methods, in ``execution.py``; RQ's
stop-job and kill-horse commands in ``commands.py``; the job threads in
``threads.py`` and their time limits in ``penalty.py``.
docs/runtime.md, "The worker"; docs/rq-contract.md for what RQ code can expect.
"""

from queueing.worker.execution import DEFAULT_TIMEOUT, WorkerJob
from queueing.worker.loop import VitoWorker

__all__ = ["DEFAULT_TIMEOUT", "VitoWorker", "WorkerJob"]
